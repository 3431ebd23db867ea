package netconn

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"time"
)

// StallBound bounds what a client that stops reading without closing may
// cost. Such a client's kernel keeps acknowledging until its receive buffer
// is full and then advertises a zero window: the server's socket is still
// writable, its send buffer fills (up to 4 MB with Linux's autotuning), and
// on SSE, held long-polls and SockJS streams no reply from the client would
// ever show that it has stopped. Both bounds are set on every accepted
// connection, so they hold on every transport and in every state the
// connection is in: streaming, held, idle between requests, or closing.
//
// On Linux:
//   - Timeout is TCP_USER_TIMEOUT: when data has waited that long without
//     the peer acknowledging any (a zero window included), the kernel drops
//     the connection and frees its buffers; the server's next read or write
//     on it fails with ETIMEDOUT. A reader that is merely slow acknowledges
//     something within every Timeout and is never cut by it.
//   - Unsent is TCP_NOTSENT_LOWAT: the socket takes no more than about this
//     many bytes beyond what is in flight. It bounds the kernel memory a
//     stalled connection holds (the send buffer would otherwise grow to
//     tcp_wmem's maximum), leaves in-flight data, and so throughput, alone,
//     and sends what does not fit back to the connection's writer, whose
//     write deadline and bounded queue apply.
//
// Elsewhere neither is set: the write deadline and the session queue are the
// only bounds, as before.
type StallBound struct {
	// Timeout is how long queued data may wait for the client to
	// acknowledge any of it. Zero: the kernel's default (about 15 minutes
	// of retransmissions, forever for a zero window).
	Timeout time.Duration
	// Unsent is how many bytes not yet sent the kernel keeps for a
	// connection. Zero: the kernel's default (no bound but the send buffer).
	Unsent int
}

// Defaults of StallBound (server flags --stall-timeout and --unsent-bytes).
const (
	DefaultStallTimeout = 30 * time.Second
	DefaultUnsentBytes  = 64 << 10
)

// Apply sets b on c's socket. A connection that is not a socket (a pipe in
// a test, TLS without access to the socket) is left as it is; so is every
// connection on a system without these options.
func (b StallBound) Apply(c net.Conn) error {
	raw, ok := rawConnOf(c)
	if !ok {
		return nil
	}
	return applyStallBound(raw, b)
}

// Abort drops c at once with a reset (SO_LINGER 0), instead of closing it
// gracefully: the kernel frees what is still in the socket's buffers now,
// rather than keeping them, in FIN-WAIT-1, for as long as the client keeps
// a zero window open. It is for connections the server gives up on: a
// client too slow to keep up, or one that stopped reading. What the client
// had not read yet is lost with it, so a normal end closes with Close.
func Abort(c net.Conn) error {
	inner := c
	if tc, ok := c.(*Conn); ok {
		inner = tc.Conn
	}
	if l, ok := inner.(interface{ SetLinger(sec int) error }); ok { // *net.TCPConn, on every system
		_ = l.SetLinger(0)
	} else if raw, ok := rawConnOf(c); ok { // a wrapper that exposes the socket
		_ = setLingerZero(raw) // on failure, a graceful close is what is left
	}
	return c.Close()
}

// ClearStallTimeout takes StallBound.Timeout off c, for a transport whose
// protocol proves the client alive by itself (WebSocket pings and pongs)
// and closes a stalled client by its own rule.
func ClearStallTimeout(c net.Conn) error {
	raw, ok := rawConnOf(c)
	if !ok {
		return nil
	}
	return clearStallTimeout(raw)
}

// IsStalled reports whether err says that the kernel dropped the connection
// because the client acknowledged nothing for StallBound.Timeout (or, with
// TCP keep-alive, answered no probe).
func IsStalled(err error) bool { return errors.Is(err, syscall.ETIMEDOUT) }

// rawConnOf finds the socket under c, through Conn and any wrapper that
// exposes it (syscall.Conn).
func rawConnOf(c net.Conn) (syscall.RawConn, bool) {
	if tc, ok := c.(*Conn); ok {
		c = tc.Conn
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	return raw, true
}

type connKey struct{}

// ConnContext is an http.Server ConnContext that makes each request's
// connection reachable by AbortOnClose.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// AbortOnClose makes the HTTP server's close of r's connection an abort
// (see Abort) when abort is true, and a graceful close again when it is
// false. It is for a response that the server may give up on while net/http
// owns the connection (a SockJS stream): net/http closes the connection
// itself, inside the write that failed, so the abort is armed before the
// response and taken off once it has ended well. It needs the server's
// ConnContext; without it nothing changes.
func AbortOnClose(r *http.Request, abort bool) {
	c, ok := r.Context().Value(connKey{}).(net.Conn)
	if !ok {
		return
	}
	sec := -1 // SO_LINGER off: the default
	if abort {
		sec = 0
	}
	if l, ok := c.(interface{ SetLinger(sec int) error }); ok {
		_ = l.SetLinger(sec)
	} else if raw, ok := rawConnOf(c); ok {
		_ = setLinger(raw, sec)
	}
}
