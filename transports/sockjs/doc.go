// Package sockjs is WaterSpout's SockJS compatibility endpoint
// (github.com/igm/sockjs-go/v3), mounted at /connect/sockjs for existing
// sockjs-client users and browsers that have neither WebSocket nor a usable
// streaming transport. It owns the HTTP side (origin checks, body and message
// limits, write deadlines) and the bridge from one SockJS session to one
// session.Session; sockjs-go owns the SockJS framing and transports. The
// channel model, the queue and the commands belong to package session.
//
// # Wire behaviour
//
//   - SockJS messages carry the same JSON frames as WebSocket. The first
//     message is the hello frame (transport "sockjs"); each later one holds
//     everything the session had queued when the writer woke, as JSON
//     objects separated by "\n". After ping seconds with nothing sent the
//     server sends a {"type":"ping"} frame; sockjs-go sends its own "h"
//     heartbeat every 25 s besides.
//   - Client messages are commands, one or more objects separated by "\n".
//     A bad command is answered with an error frame (400) and the session
//     stays usable. A message larger than limits.maxMessageBytes ends the
//     session with 3501. The transports bound what they read before that:
//     a WebSocket message or an xhr_send body of more than
//     3×maxMessageBytes+1 KiB (three times that for a form-encoded jsonp_send) is
//     refused unread: the WebSocket session gets the 3501 disconnect and
//     close frames; an xhr_send or jsonp_send is answered 413 and its
//     session ends with 3501.
//   - A client message that is not valid UTF-8 JSON text (invalid bytes, a
//     \u escape of a lone surrogate) never reaches sockjs-go's decoder,
//     which would turn it into U+FFFD: an xhr_send or jsonp_send is
//     answered 400; over WebSocket the message is replaced before sockjs-go
//     reads it and answered, in its place among the answers, with the 400
//     error frame a WebSocket client gets. The session goes on either way.
//   - Every server-initiated end is a disconnect frame followed by a SockJS
//     close frame c[code,"reason"] with the same code and reason, among
//     them shutdown (3001), slow consumer (3002), write timeout (3004) and
//     a recovered panic (3006).
//   - A request with an Origin header that Config.CheckOrigin refuses is
//     answered 403 with the JSON error body, whatever the path. Sessions are
//     never authenticated by cookie: a `token` query parameter goes to
//     Config.Authenticate, otherwise the session is anonymous until it sends
//     an `auth` command or a token in `subscribe`.
//   - SockJS sessions of the HTTP transports live on one node between
//     requests: behind a load balancer they need sticky sessions
//     (Options.StickyCookie sets the JSESSIONID cookie some balancers pin
//     by).
//
// # sockjs-go: kept, its defects contained
//
// Every workaround for a defect of sockjs-go v3.0.3 is in upstream.go, each
// named by the upstream code it answers: the unbounded send buffer (a
// link counts writes), HTTP receivers without write deadlines
// (responseWriter), the 2010 race of polling transports (retryPoll), no
// read limit (limitConn, Handler.readBody), credentials for any origin
// (the origin check in ServeHTTP) and client text decoded to U+FFFD
// (Handler.checkText, limitConn). They come to about 700 lines, each with
// its own test, and touch sockjs-go only through its public API and the
// http.ResponseWriter and net.Conn it is given.
//
// A fork was weighed and not taken. Fixing the six defects in sockjs-go
// would be small patches, but a fork makes WaterSpout the owner of all of
// sockjs-go (seven transports, the iframe page, framing, session expiry,
// ~1,600 lines) for an endpoint kept for existing sockjs-client users,
// with no upstream to share fixes with; a replacement written here would
// be the same and more. Native WebSocket, SSE and long-poll (with JSONP)
// already serve browsers without WebSocket. The workarounds are instead
// covered end to end against the real sockjs-go (sockjs_test.go, with
// pollretry_test.go and readlimit_test.go for the pieces), so an upgrade
// that changes what they rely on fails there. If sockjs-go fixes a defect (a read limit, a bounded or
// observable send buffer, a synchronous detach), its piece of upstream.go
// goes; if it stops being maintained past the next Go or gorilla upgrade
// that breaks it, the endpoint should be dropped rather than forked.
//
// # Concurrency
//
// sockjs-go runs serveSession in a goroutine of its own per session; it
// opens the session (transports.Config.Open), starts the reader, sends the
// hello frame and returns. From then on the session's writer is a
// transports.Pump whose blocking Sink is the bridge: the only caller of
// Session.Send, it runs only while something is queued (or a heartbeat is
// due), as the WebSocket and SSE writers do. Send writes synchronously
// under sockjs-go's session lock when a receiver is attached, and every
// such write has a deadline (responseWriter for HTTP, sockjs-go's
// WebsocketWriteTimeout for WebSocket), so a stalled client costs at most
// the write timeout before its session ends. With no receiver attached (a
// polling client between two requests) sockjs-go buffers the message without
// bound, so the writer then waits until that buffer has been written (a link
// counts the frames written to the session's requests) before it takes
// more: frames wait in the session's bounded queue instead. A second
// goroutine, the reader, loops on Session.Recv for the whole session and
// passes messages to HandleCommand. The pump's End ends the session: it
// sends the disconnect and close frames, cancels the reader's context, waits
// for the reader and calls session.Session.Close. The reader and the pump
// recover panics and end the session with 3006. A link's lock is taken
// before a session's (link.fail); links.mu is never held with another lock
// (see the lock graph in package session's doc.go).
package sockjs
