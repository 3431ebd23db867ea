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
// Handler and PublishHandler are safe for concurrent use. Each SSE request
// runs on its own net/http goroutine, which is the stream's only writer: it
// takes frames from the session's queue (session.Session.Next), so publishing
// never waits on a client, and it puts a write deadline on every write. A
// stream ends when the client goes away (the request context), when the
// session fails (the disconnect frame is written first) or when a write fails.
package sse
