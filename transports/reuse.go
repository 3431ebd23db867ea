package transports

import (
	"net"
	"sync"
)

// ReuseListener is a net.Listener that can take back connections a handler
// hijacked, so that the HTTP server serves their next request as if they
// had just been accepted. A held long-poll hijacks its connection to wait
// without net/http's per-connection buffers and goroutines, then answers
// and hands the connection back for the client's next poll (HTTP keep-alive).
type ReuseListener struct {
	net.Listener
	accepted chan acceptResult
	back     chan net.Conn
	done     chan struct{}
	once     sync.Once
}

var _ Reuser = (*ReuseListener)(nil)

type acceptResult struct {
	c   net.Conn
	err error
}

// NewReuseListener wraps ln; one goroutine accepts from ln.
func NewReuseListener(ln net.Listener) *ReuseListener {
	l := &ReuseListener{
		Listener: ln,
		accepted: make(chan acceptResult),
		back:     make(chan net.Conn),
		done:     make(chan struct{}),
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
	select {
	case c := <-l.back:
		return c, nil
	case r := <-l.accepted:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Reuse hands c back to the server for its next request; buffered, the
// bytes already read from c, are read first. The caller must have finished
// its answer and must not touch c again. After Close, c is closed instead.
func (l *ReuseListener) Reuse(c net.Conn, buffered []byte) {
	if len(buffered) > 0 {
		c = &prefixConn{Conn: c, pending: buffered}
	}
	select {
	case l.back <- c:
	case <-l.done:
		c.Close()
	}
}

// Accepting reports whether Close has not run yet.
func (l *ReuseListener) Accepting() bool {
	select {
	case <-l.done:
		return false
	default:
		return true
	}
}

// Close stops accepting; connections handed back from now on are closed.
func (l *ReuseListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// prefixConn reads pending before the connection.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
