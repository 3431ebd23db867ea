// Package ws is WaterSpout's native WebSocket transport (gorilla/websocket),
// served at GET /connect/ws. It owns the handshake (origin check,
// authentication, refusals), the framing of session frames into WebSocket
// text messages, heartbeats, dead-peer detection and the close handshake.
// The channel model, the queue and the commands belong to package session.
//
// # Wire behaviour
//
//   - The first message is the session's hello frame.
//   - Each later text message carries one or more JSON objects separated by
//     "\n": everything the session had queued when the writer woke up is sent
//     as one message, so a burst of publications costs one write.
//   - Client messages are text messages of one or more commands separated by
//     "\n", each message at most limits.maxMessageBytes. A larger one ends the
//     connection with a disconnect frame and close code 3501; a binary message
//     is answered with an error frame (code 400) and the connection stays
//     usable, like any other bad command.
//   - After ping seconds without a data frame the server sends a
//     {"type":"ping"} frame (browsers cannot see protocol pings), and every
//     ping seconds a protocol ping, even while data flows. A client that sends
//     nothing, not even a pong, for pongWait (two ping intervals plus
//     min(ping, 5 s)) is closed with 3005.
//   - Every server-initiated close is a disconnect frame followed by a close
//     frame with the same code and reason. A refused authentication (or a
//     node that is shutting down) is reported the same way right after the
//     upgrade, because a browser cannot read the HTTP status of a failed
//     handshake; a disallowed origin is refused before the upgrade with 403,
//     and a request that is not a WebSocket upgrade with 400, both with a JSON
//     body {"error":{"code":N,"reason":"…"}}.
//
// # Concurrency
//
// Each connection has two goroutines, started after the upgrade; ServeHTTP
// returns once they run, so the HTTP server's per-request state is released
// while the connection stays open. The writer is the only goroutine that
// writes data frames: it loops on Session.Next, writes batches, heartbeats,
// the disconnect frame and the close frame, and closes the connection. The
// reader is the only goroutine that reads: it extends the read deadline,
// answers protocol pings (WriteControl, which gorilla allows concurrently
// with the writer), and passes commands to Session.HandleCommand. The two
// meet only through the session (the reader fails it, the writer's Next
// returns the reason) and through two flags: readerDone, closed when the
// reader has returned, and peerGone, set when nothing more can be sent. The
// writer closes the connection, waits for the reader, and then calls
// Session.Close. Both goroutines recover panics and end the session with
// 3006. Commands and Next run under Options.Context (server-wide), not a
// per-connection context, to keep idle connections small.
//
// # Memory
//
// An idle connection holds gorilla's Conn with a 512-byte read buffer (write
// buffers come from a shared pool and are held only during a write), the
// session, this package's small conn, and the two goroutines with their
// stacks, which are most of it. BenchmarkIdleMemory reports the figure.
package ws
