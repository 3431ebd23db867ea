// Package transports holds what every transport shares: the Config each one
// is built from. The transports themselves live in the sub-packages ws, sse,
// poll and sockjs; each turns an HTTP request into a session.Session and
// writes its frames in that transport's framing. None knows about another or
// about the broker.
//
// # Concurrency
//
// Config is read-only once a transport is built. Every transport runs one
// writer per connection (the only goroutine that writes to it) fed by the
// session's queue, and at most one reader.
package transports
