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
// Handler is safe for concurrent use. A poll that answers at once runs on
// its net/http goroutine, waiting in session.Session.Next. A held poll (HTTP/1.x) hijacks its connection and
// the handler returns: one goroutine with a shallow stack reads the
// connection to notice the client leaving; the session's wake-up or the
// timeout starts one goroutine that stops the reader, collects the answer,
// writes it, and hands the connection back to the HTTP server
// (transports.Reuser) or closes it. Only that goroutine writes the answer.
// A held poll costs its session, a timer, the small heldPoll and the reader.
package poll
