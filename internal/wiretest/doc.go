// Package wiretest is the one wire-level client of WaterSpout's protocol
// (docs/PROTOCOL.md) that tests use: a WebSocket client, streams of frames
// over WebSocket, SSE and long-poll/JSONP, one Recorder of session metrics,
// and Env, a node on a memory broker with the handler under test on a
// loopback server. Frames and their decoding are package wire's. The
// transports' own tests, transports/conformance and e2e/multinode speak
// the wire through it, so that a change to the protocol is made to one
// client, not to eight.
//
// It speaks only through the public wire (URLs, frames, HTTP answers) and
// the public session API, so that the transports' internals can change
// under it. The load generator (internal/bench) shares package wire only:
// its hot read paths are measured and stay its own, and it must not link
// the testing package.
//
// Concurrency: a Stream is filled by one reader goroutine and read by the
// test's goroutine; a Recorder is safe for concurrent use. The other types
// belong to one goroutine.
package wiretest
