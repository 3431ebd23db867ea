package netconn

import (
	"errors"
	"net"
	"os"
	"sync"
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
//   - TryWrite, a write that never waits: not for the socket (one
//     non-blocking attempt; what the socket does not take is kept) and not
//     for another writer (when one holds the connection, all of it is kept).
//     A Pump's shared writer writes many connections in turn and must not
//     wait for any one of them. Flush, on a goroutine that may block, writes
//     what was kept; Write sends the kept bytes first, so nothing reorders.
//     On Linux (conn_linux.go), TryWrite calls write(2) on the socket itself: going through
//     syscall.RawConn costs a closure on the heap and the poller's locking
//     and deadline bookkeeping on every write, none of which a write that
//     cannot wait needs (BenchmarkConnTryWrite: 4.8 µs and 3 allocations
//     per small write that way, 2.5 µs and none this way). A write of up to
//     64 KB is also made without the runtime's system-call bookkeeping
//     (rawWrite), which took S2 at 50,000/s from 12.1 to 10.9 µs of server
//     CPU per delivery (docs/BENCHMARKS.md).
//
// Reads pass straight through. Write, Flush and the deadlines may be called
// from several goroutines; they are serialised by Conn's lock, which a
// blocking Write holds while it waits. TryWrite and Flush are the pump's:
// one goroutine at a time.
type Conn struct {
	net.Conn
	// fd is the socket TryWrite writes to, -1 when there is none to try (a
	// pipe, TLS). fdMu keeps it open during such a write: Close takes it
	// before closing, so the number cannot be closed and reused for another
	// connection under a write. The write never blocks, so Close waits
	// microseconds at most.
	fd       int
	fdMu     sync.Mutex
	fdClosed bool // under fdMu

	mu      sync.Mutex
	applied time.Time // the write deadline in force on Conn
	kept    []byte    // taken by TryWrite, not yet by the socket (under mu)
	// unsent is what a TryWrite could not even try, because a blocking
	// writer held the connection; only TryWrite and Flush touch it.
	unsent []byte
}

// NewConn wraps c. Non-blocking writes need Linux and c to be a
// non-blocking socket (syscall.Conn); anything else still gets the lazy
// deadline, and TryWrite then keeps everything, for Flush to write (see
// Direct).
func NewConn(c net.Conn) *Conn {
	return &Conn{Conn: c, fd: directFD(c)}
}

// Direct reports whether TryWrite writes to the socket itself (the fast
// path). It is false on a system without the fast path (FastPath), and on
// Linux for a connection that is not a non-blocking socket or hides it: a
// pipe, TLS, or a wrapper that does not forward SyscallConn. TryWrite then
// keeps every byte for Flush, which writes through net.Conn under the
// write deadline: correct, but each delivery costs a goroutine switch.
func (c *Conn) Direct() bool { return c.fd >= 0 }

// Close closes the connection; a TryWrite from then on fails with
// net.ErrClosed.
func (c *Conn) Close() error {
	c.fdMu.Lock()
	c.fdClosed = true
	c.fdMu.Unlock()
	return c.Conn.Close()
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

// Write writes the kept bytes and then p, blocking under the write deadline.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.flushLocked(0); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// TryWrite writes p without waiting. flushed is false when some of p is
// kept instead (the socket is full, or another writer holds the
// connection); the caller must then Flush before it writes again. err is
// the socket's error, and p is then dropped: the connection is unusable.
// No write deadline applies: the write cannot wait, and a deadline that
// passed while the connection was idle must not fail it. Flush, which may
// wait, sets its own.
func (c *Conn) TryWrite(p []byte) (flushed bool, err error) {
	if len(c.unsent) > 0 || !c.mu.TryLock() {
		c.unsent = append(c.unsent, p...)
		return false, nil
	}
	defer c.mu.Unlock()
	if len(c.kept) == 0 {
		n, err := c.tryWriteLocked(p)
		if err != nil {
			return false, err
		}
		p = p[n:]
	}
	if len(p) == 0 {
		return true, nil
	}
	c.kept = append(c.kept, p...)
	return false, nil
}

// tryWriteLocked makes one non-blocking write of p (the socket is
// non-blocking: Go's poller made it so) and returns what it took.
func (c *Conn) tryWriteLocked(p []byte) (int, error) {
	if c.fd < 0 || len(p) == 0 {
		return 0, nil
	}
	c.fdMu.Lock()
	if c.fdClosed {
		c.fdMu.Unlock()
		return 0, net.ErrClosed
	}
	n, again, err := writeNonblock(c.fd, p)
	c.fdMu.Unlock()
	switch {
	case again:
		return 0, nil
	case err != nil:
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", err)}
	}
	return n, nil
}

// Pending reports whether bytes that TryWrite kept still wait for Flush.
// Only the pump's goroutine may call it.
func (c *Conn) Pending() bool {
	if len(c.unsent) > 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.kept) > 0
}

// Flush writes what TryWrite kept, blocking until deadline.
//
// The deadline is a write-progress deadline: each time it passes after the
// socket took some bytes, it is renewed by as much again. What fails a
// Flush is a whole timeout in which the client took nothing (a stalled
// reader), not a large batch taking longer than that to a client that
// reads slowly but keeps reading.
func (c *Conn) Flush(deadline time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	timeout := time.Until(deadline)
	if err := c.setWriteDeadlineLocked(deadline); err != nil {
		return err
	}
	if err := c.flushLocked(timeout); err != nil {
		return err
	}
	unsent := c.unsent
	c.unsent = nil
	for len(unsent) > 0 {
		n, err := c.writeProgressLocked(unsent, timeout)
		if err != nil {
			return err
		}
		unsent = unsent[n:]
	}
	return nil
}

// flushLocked writes the kept bytes; timeout renews the write deadline
// while they make progress (see Flush), none when zero.
func (c *Conn) flushLocked(timeout time.Duration) error {
	for len(c.kept) > 0 {
		n, err := c.writeProgressLocked(c.kept, timeout)
		c.kept = c.kept[n:]
		if err != nil {
			return err
		}
	}
	c.kept = nil
	return nil
}

// writeProgressLocked writes p under the write deadline in force and, when
// the deadline passes after some of p went out, sets a new one timeout
// later and goes on.
func (c *Conn) writeProgressLocked(p []byte, timeout time.Duration) (int, error) {
	total := 0
	for {
		n, err := c.Conn.Write(p[total:])
		total += n
		var ne net.Error
		if err == nil || n == 0 || timeout <= 0 || !errors.As(err, &ne) || !ne.Timeout() {
			return total, err
		}
		if err := c.setWriteDeadlineLocked(time.Now().Add(timeout)); err != nil {
			return total, err
		}
	}
}
