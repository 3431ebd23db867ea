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
// session has one wake-up, the pump's.
//
// It also holds every connection's writer, the Pump (pump.go), and
// what it writes through: Conn (conn.go), a hijacked connection with a lazy
// write deadline and writes that never wait, and the shared writers
// (writers.go) that serve every such connection in turn when a publication
// reaches thousands of them at once. ReuseListener (reuse.go) takes back
// the connections of held long-polls for their next request, and gives
// every accepted connection its StallBound (stall.go): the kernel drops a
// client that acknowledges nothing for the stall timeout and keeps no more
// than the unsent-bytes bound for it. A connection the server gives up on
// is aborted (Abort, AbortOnClose), not closed behind unsendable data.
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
