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
//     ping seconds a protocol ping, even while data flows (both at the next
//     point of the heartbeat grid, see transports.heartbeatDelay, and both
//     on the shared writers). A client that sends
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
// Each connection has a reader goroutine and a writer, a transports.Pump;
// ServeHTTP returns once they are set up, so the HTTP server's per-request
// state is released while the connection stays open. The pump is the only
// writer: batches, heartbeats, pongs, the disconnect frame and the close
// frame, every one framed by this package (internal/wsframe) and written
// to the netconn.Conn without gorilla: on the shared writers without
// blocking, or on the pump's goroutine under the write deadline. Gorilla
// does the handshake and reads. The
// reader is the only goroutine that reads; it writes nothing itself (a
// client that sends pings and reads nothing would block it, and a shared
// writer behind it): it leaves the pong for the latest ping (pongDue) or the
// echo of the client's close frame (closeEcho) and pokes the pump. The one
// exception is gorilla's own close frame on a protocol error, a single write
// that netconn.Conn keeps whole. The reader extends the read deadline and
// passes commands to Session.HandleCommand. The two meet only through the
// session (the reader fails it, the pump ends), the poke, and readerDone
// and peerGone. The pump's End closes the connection, waits for the reader,
// and calls Session.Close. Both recover panics and end the session with
// 3006. Commands run under transports.Config.Context (server-wide), not a
// per-connection context, to keep idle connections small.
//
// # Memory
//
// An idle connection holds gorilla's Conn with its read buffer (write
// buffers come from a shared pool and are held only during a write), the
// session, this package's small conn, the pump's timer, and one goroutine:
// the reader, parked in a shallow read outside gorilla. BenchmarkIdleMemory
// reports the heap and stack figure; docs/BENCHMARKS.md S1 the RSS.
package ws
