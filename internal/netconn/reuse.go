package netconn

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ReuseListener is a net.Listener that can take back connections a handler
// hijacked, so that the HTTP server serves their next request as if they
// had just been accepted. A held long-poll hijacks its connection to wait
// without net/http's per-connection buffers and goroutines, then answers
// and hands the connection back for the client's next poll (HTTP keep-alive).
//
// A connection handed back with nothing to read yet waits off the server,
// parked with a goroutine of its own, for up to the idle timeout (as an idle
// keep-alive connection would in net/http); the server gets it when the
// client's next request begins, so that the server's header timeout starts
// then, not while the client is still thinking.
type ReuseListener struct {
	net.Listener
	idle     time.Duration
	accepted chan acceptResult
	back     chan net.Conn
	done     chan struct{}
	once     sync.Once
	serving  atomic.Bool // Accept has been called: a server takes connections
	bound    atomic.Pointer[StallBound]

	mu     sync.Mutex
	parked map[net.Conn]struct{}
	closed bool
}

type acceptResult struct {
	c   net.Conn
	err error
}

// NewReuseListener wraps ln; one goroutine accepts from ln. idle bounds how
// long a connection handed back waits for its next request (the HTTP
// server's idle timeout).
func NewReuseListener(ln net.Listener, idle time.Duration) *ReuseListener {
	l := &ReuseListener{
		Listener: ln,
		idle:     idle,
		accepted: make(chan acceptResult),
		back:     make(chan net.Conn),
		done:     make(chan struct{}),
		parked:   make(map[net.Conn]struct{}),
	}
	go l.acceptLoop()
	return l
}

func (l *ReuseListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- acceptResult{c, err}:
		case <-l.done:
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			if ne, ok := err.(interface{ Temporary() bool }); !ok || !ne.Temporary() {
				return // the listener is closed; Accept has passed the error on
			}
		}
	}
}

// Accept returns the next connection: a new one, or one handed back.
func (l *ReuseListener) Accept() (net.Conn, error) {
	l.serving.Store(true)
	select {
	case c := <-l.back:
		return c, nil
	case r := <-l.accepted:
		if b := l.bound.Load(); b != nil && r.c != nil {
			_ = b.Apply(r.c) // best effort: without it, the write deadlines still bound a stalled client
		}
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// SetStallBound makes every connection accepted from now on carry b (see
// StallBound); connections handed back keep what they were given.
func (l *ReuseListener) SetStallBound(b StallBound) { l.bound.Store(&b) }

// Reuse hands c back to the server for its next request; buffered, the
// bytes already read from c, are read first. The caller must have finished
// its answer and must not touch c again. With nothing buffered, c is parked
// until its next request begins, or closed after the idle timeout. After
// Close, c is closed instead.
func (l *ReuseListener) Reuse(c net.Conn, buffered []byte) {
	if len(buffered) > 0 {
		l.handBack(&PrefixConn{Conn: c, Pending: buffered})
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.parked[c] = struct{}{}
	l.mu.Unlock()
	go l.park(c)
}

// park waits for the first bytes of c's next request, then hands c back.
// A long-poll client asks again as soon as it has read an answer, so one
// that has not within the stall bound's timeout (when shorter than the idle
// timeout) has stopped reading: its connection is aborted, like every
// connection the server gives up on, so that neither the answer it never
// read nor the socket stays behind on the server.
func (l *ReuseListener) park(c net.Conn) {
	var b [64]byte
	wait := l.idle
	if bd := l.bound.Load(); bd != nil && bd.Timeout > 0 {
		wait = min(wait, bd.Timeout)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(b[:])
	l.mu.Lock()
	delete(l.parked, c)
	closed := l.closed
	l.mu.Unlock()
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		_ = Abort(c) // idle too long
		return
	}
	if err != nil || closed {
		c.Close() // the client left, or the server stops
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	l.handBack(&PrefixConn{Conn: c, Pending: append([]byte(nil), b[:n]...)})
}

func (l *ReuseListener) handBack(c net.Conn) {
	select {
	case l.back <- c:
	case <-l.done:
		c.Close()
	}
}

// Accepting reports whether a connection handed back now would be served:
// a server is accepting from l, and Close has not run yet.
func (l *ReuseListener) Accepting() bool {
	select {
	case <-l.done:
		return false
	default:
		return l.serving.Load()
	}
}

// Close stops accepting and closes the parked connections; connections
// handed back from now on are closed.
func (l *ReuseListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
		l.mu.Lock()
		l.closed = true
		for c := range l.parked {
			c.Close()
		}
		l.mu.Unlock()
	})
	return err
}

// PrefixConn reads Pending, bytes already taken off the connection (by
// net/http's reader, or a wait for the next request), before the
// connection itself. Only its reader may touch Pending.
type PrefixConn struct {
	net.Conn
	Pending []byte
}

func (c *PrefixConn) Read(p []byte) (int, error) {
	if len(c.Pending) > 0 {
		n := copy(p, c.Pending)
		c.Pending = c.Pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// SyscallConn is the socket's: the prefix matters to reads only, and
// Conn needs the socket to write without blocking.
func (c *PrefixConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}
