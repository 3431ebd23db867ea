// Package wiretest is the one wire-level client of WaterSpout's protocol
// (docs/PROTOCOL.md) that tests use, a file per way in:
//
//   - stream.go: Stream, the frames of one connection in order, whatever
//     carries them, with OpenSSE, PollLoop and OpenStream;
//   - ws.go, sse.go, poll.go, sockjs.go: a client per transport (a SockJS
//     client of events, for SockJS's own framing, and SockJSFrames for a
//     Stream of WaterSpout frames over SockJS);
//   - raw.go, stalled.go, http.go: a raw HTTP/1.1 connection, one that
//     stops reading (DialStalled), plain requests;
//   - env.go, transportenv.go, serve.go: Env, a node on a memory broker
//     with the handler under test on a loopback server; TransportEnv, the
//     one builder of a transport package's test server; Serve, for tools;
//   - recorder.go: one Recorder of session metrics.
//
// Frames and their decoding are package wire's. The transports' own tests,
// transports/conformance, the server's and e2e/multinode speak the wire
// through it, so that a change to the protocol is made to one client, not
// to eight.
//
// It speaks only through the public wire (URLs, frames, HTTP answers) and
// the public session API, so that the transports' internals can change
// under it. The load generator (internal/bench) shares package wire only:
// its hot read paths are measured and stay its own, and it must not link
// the testing package.
//
// Concurrency: a Stream is filled by one reader goroutine and read by the
// test's goroutine; a Recorder is safe for concurrent use. The other types
// belong to one goroutine.
package wiretest
