package transports

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// Conn is a hijacked connection as a streaming transport writes to it. It
// adds two things to net.Conn, both for the fan-out path, where one
// publication means one small write on each of thousands of connections:
//
//   - A lazy write deadline. Setting a deadline costs a runtime timer
//     update, as much as a tenth of a small write. SetWriteDeadline keeps the
//     deadline already in force when that one ends no earlier than three
//     quarters of the way to the new one, so a connection written to every
//     few milliseconds renews its deadline a few times per write timeout, not
//     on every write. A stalled write is still cut, after between 3/4 and all
//     of the write timeout.
//   - Writes that never block (Try). A Pump's shared writer writes many
//     connections in turn and must not wait for any one of them: inside Try,
//     Write makes one non-blocking attempt, keeps what the socket did not
//     take, and reports the whole write done. Flush, on a goroutine that may
//     block, writes what was kept. Every later write waits for the kept bytes
//     first, so bytes never reorder.
//
// Reads pass straight through. Writes, deadlines and Try may be called from
// several goroutines: they are serialised by Conn's own lock.
type Conn struct {
	net.Conn
	raw syscall.RawConn // nil when the connection has no socket to try (a pipe, TLS)

	mu      sync.Mutex
	applied time.Time // the write deadline in force on Conn
	trying  bool      // inside Try
	kept    []byte    // written by a Try, not yet by the socket
}

// NewConn wraps c. Non-blocking writes need c to be a socket (syscall.Conn);
// anything else still gets the lazy deadline, and Try then reports every
// write as kept, for Flush to write.
func NewConn(c net.Conn) *Conn {
	wc := &Conn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			wc.raw = raw
		}
	}
	return wc
}

// SetWriteDeadline sets the write deadline to t, or keeps the one in force
// when it ends between three quarters of the way to t and t.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setWriteDeadlineLocked(t)
}

func (c *Conn) setWriteDeadlineLocked(t time.Time) error {
	if t.Equal(c.applied) {
		return nil
	}
	if !t.IsZero() && !c.applied.IsZero() && !c.applied.After(t) {
		now := time.Now()
		if c.applied.Sub(now) >= t.Sub(now)*3/4 {
			return nil
		}
	}
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	c.applied = t
	return nil
}

// SetDeadline sets both deadlines; the write deadline is recorded as in force.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.Conn.SetDeadline(t); err != nil {
		return err
	}
	c.applied = t
	return nil
}

// Write writes p. Inside Try it writes what the socket takes at once and
// keeps the rest; otherwise it blocks, under the write deadline, until the
// kept bytes and then p are written.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trying {
		if len(c.kept) == 0 {
			n, err := c.tryWrite(p)
			if err != nil {
				return n, err
			}
			p = p[n:]
		}
		c.kept = append(c.kept, p...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// tryWrite makes one non-blocking write of p.
func (c *Conn) tryWrite(p []byte) (int, error) {
	if c.raw == nil || len(p) == 0 {
		return 0, nil
	}
	var n int
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				return true // done or not, never wait for the socket
			}
		}
	})
	if err != nil { // closed, or the write deadline has passed
		return 0, err
	}
	if n < 0 {
		n = 0
	}
	if werr == syscall.EAGAIN {
		return n, nil
	}
	if werr != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: werr}
	}
	return n, nil
}

// Try runs fn, during which every Write is a non-blocking attempt (see
// Conn). It reports whether everything fn wrote reached the socket; when
// not, the caller must Flush (or close the connection) before anything else
// is sent. fn must write only through c.
func (c *Conn) Try(fn func() error) (flushed bool, err error) {
	c.mu.Lock()
	c.trying = true
	c.mu.Unlock()
	err = fn()
	c.mu.Lock()
	c.trying = false
	flushed = len(c.kept) == 0
	c.mu.Unlock()
	return flushed, err
}

// Flush writes the kept bytes, blocking under the write deadline.
func (c *Conn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *Conn) flushLocked() error {
	for len(c.kept) > 0 {
		n, err := c.Conn.Write(c.kept)
		c.kept = c.kept[n:]
		if err != nil {
			return err
		}
	}
	c.kept = nil
	return nil
}
