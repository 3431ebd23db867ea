// Package multinode holds the scale-out test: real `waterspout serve`
// processes on a real Redis, behind a real haproxy with plain round-robin and
// no stickiness. It has no code of its own outside its tests.
//
// The tests build cmd/waterspout once, start Debian's redis-server and
// haproxy on free loopback ports, and drive them with small WebSocket, SSE and
// long-poll clients written here against docs/PROTOCOL.md (deliberately not
// the server's own code), so that what they check is the wire contract:
//
//   - a numbered stream reaches every client exactly once and in order while
//     one node is killed with SIGKILL and the clients reconnect to the others
//     through haproxy;
//   - a publish on one node reaches a subscriber on another;
//   - a long-poll that asks a different node each time loses and repeats
//     nothing;
//   - a Redis restart (no persistence) ends, for every client, in an explicit
//     recovered:false with the new epoch, never a silent gap or a repeat, and
//     everything published after the client resubscribed arrives;
//   - SockJS, the one transport that needs stickiness, is pinned by the
//     haproxy configuration the docs recommend;
//   - presence and join/leave span the nodes, a SIGKILLed node's entries
//     are purged by the others, and POST /api/disconnect closes a user's
//     connections on every node and transport.
//
// The tests log what they measure (reconnect and recovery times, failed
// publishes); docs/OPERATIONS.md quotes those numbers. Without haproxy or
// redis-server the tests are skipped, and fail when the CI environment
// variable is set.
//
// # Concurrency
//
// Each client runs in its own goroutine and records what it receives in a
// stream, whose methods are safe to call from any goroutine; the test
// goroutine waits on streams and reads them after the clients have stopped.
// Processes are started and killed by the test goroutine only, and every one
// is killed in t.Cleanup.
package multinode
