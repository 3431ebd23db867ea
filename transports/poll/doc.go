// Package poll serves WaterSpout's HTTP long-polling transport at
// /connect/poll: XHR requests answered with JSON, and JSONP (`callback=`)
// for browsers that can only load scripts.
//
// Polling is stateless on the server: every request creates a session,
// subscribes the channels it names from the positions in its cursor, answers
// {"messages": [...], "cursor": "..."} and closes the session. The cursor
// carries all the state, so any node can serve the next poll. A request
// without a cursor is answered at once (hello, subscribed frames, cursor); one
// with a cursor is held until a message arrives or Options.Timeout passes.
//
// JSONP cannot be origin-checked by the browser: any page may load the
// script. The handler checks the Origin, or else the Referer, with
// Config.CheckOrigin when a browser sends one, but a page can suppress the
// Referer; channels that carry private data must need a token, never a cookie.
//
// # Concurrency
//
// Handler is safe for concurrent use. A poll's writer is a transports.Pump
// with a one-shot Sink (pollSink), the model of every transport: the pump
// runs only when the session queues something, ends, or is poked (the
// linger or the timeout has passed), and the sink answers once, then closes
// the session. While the poll is on net/http, the handler's goroutine waits
// for that answer (the ResponseWriter must outlive it) or for the client to
// leave, and the pump runs there (transports.Hosted: the sink's Host hands
// the turn to the waiting handler, which calls Pump.Drive and times the
// linger itself); a goroutine of the pump's own would cost every answer
// a goroutine start and a stack grown through the write path, and the
// linger another, measured at +29 % CPU per delivery in S6 at 5,000/s. A
// held poll's pump runs on goroutines of its own. A held poll (HTTP/1.x) hijacks
// its connection and the handler returns: one goroutine with a shallow
// stack reads the connection to notice the client leaving; the pump's
// answer stops that reader, writes on the connection, and hands it back to
// the HTTP server (transports.Reuser) or closes it. Only the pump writes
// the answer. A held poll costs its session, its pump and timers, the
// pollSink and the reader. pollSink.mu is taken before the session's lock
// (see the lock graph in package session's doc.go).
package poll
