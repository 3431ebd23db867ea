// Package transports holds what every transport shares: the Config each one
// is built from. The transports themselves live in the sub-packages ws, sse,
// poll and sockjs; each turns an HTTP request into a session.Session and
// writes its frames in that transport's framing. None knows about another or
// about the broker.
//
// Every transport opens its sessions through one entry point, Config.Open
// (open.go): it creates the session, authenticates the request (recovering
// a panic in the authenticator), subscribes the channels the request names,
// and on refusal closes the session and says what to answer, as an HTTP
// status (SSE, long-poll, client publish) or as a disconnect frame and
// close code (WebSocket, SockJS). Error answers have one JSON body,
// ErrorBody / WriteError, which the server's API answers with too.
//
// Every transport then writes through one writer model, a Pump and the
// transport's Sink: WebSocket and SSE with a TrySink (non-blocking batches
// on the shared writers) and a Poker (WebSocket's pongs), SockJS with a
// blocking Sink (sockjs-go's Send), and the long-poll with a one-shot Sink
// that answers once and is poked at its linger and its timeout. So a
// session has one wake-up, the pump's. A Sink that already has a waiting
// goroutine (a long-poll held on net/http) is Hosted: the pump's turns run
// there, through Pump.Drive, rather than on a goroutine started for them.
//
// It also holds the streaming connections' writer, the Pump (pump.go), and
// the per-server Writers (writers.go): the shared writers that serve every
// streaming connection in turn when a publication reaches thousands of them
// at once, and the heartbeat grid's origin. The server creates one Writers
// and passes it in Config.Writers: nothing here is process-wide, so two
// servers in one process share nothing and tests can run the pump in a
// testing/synctest bubble.
//
// Everything written at the socket level lives in internal/netconn: the
// connection with its Linux fast path and portable fallback (netconn.Conn),
// the stall bound and abort, the ReuseListener that takes back held
// long-polls' connections, and the HTTP/1.1 head and chunk writer that SSE
// and poll use on hijacked connections. A connection the server gives up
// on is aborted (netconn.Abort, AbortOnClose), not closed behind
// unsendable data (GaveUp).
//
// # WebSocket framing: who owns it
//
// Decision: the server's writes are owned by this project, gorilla keeps the
// handshake and the reads. Until issue 22 it was half-and-half: ws framed a
// batch and a heartbeat by hand on the shared writers while its blocking
// writes (a batch the socket did not take, pongs, the hello, the
// disconnect and close frames) went through gorilla. Leaving everything to
// gorilla would give up what docs/BENCHMARKS.md measured these tricks to
// earn:
//
//   - Framing on the shared writers: gorilla's writers wait for gorilla's
//     write lock, which a reader's protocol-error close may hold while the
//     client reads nothing, and a shared writer must never wait (a stalled
//     client would hold up every other connection). It is what lets fan-out
//     use GOMAXPROCS shared writers at all (S2 at 50,000/s from 12.33 to
//     9.97 µs per delivery) and, on its own, 9.97 to 9.67 µs.
//   - The shallow reader with pongs taken before gorilla: an idle
//     connection's goroutine parks in a 2 KB stack rather than 4 KB inside
//     gorilla's NextReader, about a fifth of S1's 9 KB per connection.
//
// So every server frame is built by internal/wsframe (header, unmasked
// payload; control frames; the close payload) and written by ws in one
// netconn.Conn write: on the shared writers without blocking, elsewhere
// under the write deadline. Gorilla's only write after the handshake is
// its own close frame on a protocol error; ws's rawConn notes it, and ws
// sends nothing after a close frame (gorilla's ErrCloseSent rule, kept).
// The reads stay gorilla's, behind the shallow reader that takes bare
// pongs (wsframe.IsBareClientPong): parsing masked, fragmented client
// frames with their limits is what gorilla does well, and a read-side
// filter that hands every other byte on unchanged cannot desynchronise it.
//
// Both WebSocket endpoints, ws and SockJS's websocket transport, take their
// handshake from one place, Config.Upgrader (upgrade.go): the origin check,
// the write timeout, no compression, pooled write buffers, and a refusal
// answered with the JSON error body.
//
// # Concurrency
//
// Config is read-only once a transport is built. Every connection has one
// writer at a time, fed by the session's queue: its Pump hands the writing
// to exactly one goroutine (a shared writer for non-blocking batches, or a
// goroutine of the pump's own for anything that may block), never two, and
// holds none while the connection is idle. At most one goroutine reads.
// A shared writer never blocks: Conn.TryWrite neither waits for the socket
// nor for Conn's lock, so a client that reads nothing costs only its own
// connection. The lock graph, with the wake-up that runs under a session's
// lock (Pump.kick, then the shared writers' queue lock), is in package
// session's doc.go.
package transports
