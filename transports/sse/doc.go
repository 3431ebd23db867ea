// Package sse serves WaterSpout's Server-Sent Events transport at
// GET /connect/sse, and the client-side publish endpoint POST /connect/publish
// that SSE and long-poll clients use to send.
//
// A request names its channels (`channel=`, repeated) and may resume from a
// cursor (the `Last-Event-ID` header, or `cursor=`); the handler subscribes
// them all before it answers, so a refusal is an HTTP status with a JSON error
// body and never a half-open stream. The stream then carries every frame as
// one unnamed event (`data:` only, so EventSource.onmessage sees them all);
// events that move a channel's position carry the client's cursor as their
// `id:`, which lets a browser's own reconnect resume without loss.
//
// The handler is written on net/http: r3labs/sse's server freezes a whole
// stream behind one stalled subscriber (see LIBRARIES.md).
//
// # Concurrency
//
// Handler and PublishHandler are safe for concurrent use. On HTTP/1.x a
// stream hijacks its connection: the handler's goroutine returns, one
// goroutine with a shallow stack reads the connection only to notice the
// client leaving, and the stream's writer is a transports.Pump, which takes
// frames from the session's queue, so publishing never waits on a client.
// Its batches go out on the shared writers without blocking; what a socket
// does not take is flushed on the pump's own goroutine under the write
// deadline. On HTTP/2 the handler's goroutine waits while the pump writes
// through the ResponseWriter. A stream ends when the client goes away, when
// the session fails (the disconnect event is written first) or when a write
// fails.
package sse
