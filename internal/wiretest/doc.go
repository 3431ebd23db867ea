// Package wiretest is the one wire-level client of WaterSpout's protocol
// (docs/PROTOCOL.md) that tests use: the frame type, a WebSocket client, an
// SSE event reader, a long-poll and JSONP client, and Env, a node on a
// memory broker with the handler under test on a loopback server. The
// transports' own tests, transports/conformance and e2e/multinode speak
// the wire through it, so that a change to the protocol is made to one
// client, not to eight.
//
// It speaks only through the public wire (URLs, frames, HTTP answers) and
// the public session API, so that the transports' internals can change
// under it. The load generator (internal/bench) shares the frame helpers
// only: its hot read paths are measured and stay its own.
//
// Concurrency: a Stream is filled by one reader goroutine and read by the
// test's goroutine; a Recorder is safe for concurrent use. The other types
// belong to one goroutine.
package wiretest
