// Package wire is WaterSpout's protocol (docs/PROTOCOL.md) as a client
// decodes it: the frame type, the frames of a WebSocket message, SSE
// events (parsed as a browser's EventSource does), long-poll and JSONP
// answers, SockJS frames, and the subscribe command. The test client
// (internal/wiretest) and the load generator (internal/bench) share it;
// it has no test dependencies.
//
// Its decoders read a server's output, not untrusted input: they return
// an error on anything the protocol does not allow, and keep no state
// except SSEReader's buffered reader.
package wire
