// Package conformance holds one table of delivery scenarios that runs against
// every transport (WebSocket, SSE, long-poll, JSONP, SockJS) with the same
// expectations: hello first; subscribe and receive in order; resume after a
// disconnect with each message exactly once; recovered:false after an epoch
// change; heartbeats; a stalled client dropped without hurting the others;
// malformed and oversized input answered with the documented error. A second
// table (presence_test.go) does the same for presence, join/leave and a
// backend's disconnect and unsubscribe. TestConstructors holds the
// constructors to one contract: a Config needs a Node and a CheckOrigin,
// and options a transport cannot honour are refused.
//
// Each transport is driven by a small client written against the wire
// protocol in docs/PROTOCOL.md, not against the server's code.
//
// # Concurrency
//
// Tests only; each scenario runs its own node and server.
package conformance
