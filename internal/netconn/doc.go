// Package netconn owns every byte written at the system-call level to a
// connection taken from net/http. It is the only package that touches a
// socket's descriptor, and the only one with RawSyscall and unsafe in it;
// the transports (ws, sse, poll, sockjs) reach sockets through it.
//
// It holds:
//   - Conn (conn.go): a hijacked connection with a lazy write deadline and
//     TryWrite, a write that never waits, which the shared writers of
//     transports.Writers use for fan-out. On Linux (conn_linux.go) TryWrite
//     is one write(2) on the non-blocking socket, made with RawSyscall; on
//     every other system (conn_other.go, FastPath false) TryWrite keeps the
//     bytes and Flush writes them through net.Conn under the write
//     deadline: correct everywhere, measured and fast on Linux.
//     Conn.Direct says which path a connection takes: every wrapper between
//     the listener and the transport must forward SyscallConn for the fast
//     path, and transports.Writers.Conn logs once when one does not.
//   - StallBound, Abort, AbortOnClose (stall.go, stall_linux.go): the
//     socket options that bound a client that stops reading
//     (TCP_USER_TIMEOUT, TCP_NOTSENT_LOWAT) and the reset (SO_LINGER 0) for
//     a connection given up on. Linux only; elsewhere no-ops.
//   - ReuseListener (reuse.go): takes hijacked connections back for their
//     next request (held long-polls).
//   - AppendResponseHead and FrameChunk (http1.go): the HTTP/1.1 response
//     head and chunked framing that SSE and held polls write by hand on
//     hijacked connections.
//   - Sockets and SocketKey (sockets.go): a port's sockets and their
//     states from /proc/net/tcp, where the bench and the tests see that a
//     connection given up on is gone from the kernel. Linux only; an error
//     elsewhere.
//
// # Concurrency
//
// Conn's Write, Flush and deadlines may be called from several goroutines
// (Conn's lock serialises them); TryWrite, Flush and Pending are one
// writer's at a time (a pump's). Conn's lock is taken alone, never with
// another. ReuseListener is safe for concurrent use.
package netconn
