package sockjs

import (
	"encoding/binary"
	"net"
	"time"
)

// sockjs-go reads WebSocket messages with gorilla's ReadJSON and never sets a
// read limit, so one client message could grow without bound in memory. The
// connection it reads from is the one Hijack returns, so that connection
// (limitConn) follows the client's frame headers and stops a message that
// grows past the limit before gorilla sees its first byte.

// frameLimiter follows the frames a WebSocket client sends (RFC 6455 §5.2):
// it reads each header, skips the payload, and adds the payload lengths of a
// message's data frames. It does not validate frames: gorilla does.
type frameLimiter struct {
	limit   uint64
	hdr     [14]byte // the longest header: 2 + 8 length bytes + 4 mask bytes
	hdrLen  int      // bytes of the current header seen so far
	payload uint64   // payload bytes of the current frame still to come
	message uint64   // payload bytes of the current message so far, ≤ limit
}

// headerLen is the length of the header that starts with hdr (at least 2
// bytes must be known to tell).
func headerLen(hdr []byte) int {
	if len(hdr) < 2 {
		return 2
	}
	n := 2
	switch hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if hdr[1]&0x80 != 0 { // masked, as every client frame is
		n += 4
	}
	return n
}

// feed consumes the next bytes of the stream. When a data frame's header
// takes its message past the limit, it returns over and the number of bytes
// of p before that header (which may be passed on: they end earlier frames);
// otherwise len(p). Once over, the limiter must not be fed again.
func (f *frameLimiter) feed(p []byte) (pass int, over bool) {
	start := 0 // where the header being read began in p (0 if in an earlier p)
	for i := 0; i < len(p); {
		if f.payload > 0 {
			n := min(uint64(len(p)-i), f.payload)
			f.payload -= n
			i += int(n)
			continue
		}
		if f.hdrLen == 0 {
			start = i
		}
		f.hdr[f.hdrLen] = p[i]
		f.hdrLen++
		i++
		if f.hdrLen < headerLen(f.hdr[:f.hdrLen]) {
			continue
		}
		var length uint64
		switch f.hdr[1] & 0x7f {
		case 126:
			length = uint64(binary.BigEndian.Uint16(f.hdr[2:4]))
		case 127:
			length = binary.BigEndian.Uint64(f.hdr[2:10])
		default:
			length = uint64(f.hdr[1] & 0x7f)
		}
		f.hdrLen = 0
		f.payload = length
		opcode := f.hdr[0] & 0x0f
		if opcode&0x08 != 0 {
			continue // a control frame, between fragments or alone: not part of a message
		}
		if opcode != 0 { // text or binary: a new message (0 continues one)
			f.message = 0
		}
		if length > f.limit-f.message {
			return start, true
		}
		f.message += length
	}
	return len(p), false
}

// limitConn is the connection gorilla reads a SockJS WebSocket from.
type limitConn struct {
	net.Conn
	lim   frameLimiter
	grace time.Duration
	over  func()
	// tripped is set once a message went over the limit; only the reading
	// goroutine touches it.
	tripped bool
}

func newLimitConn(c net.Conn, limit int64, grace time.Duration, over func()) *limitConn {
	return &limitConn{Conn: c, lim: frameLimiter{limit: uint64(limit)}, grace: grace, over: over}
}

// Read passes the client's bytes on until a message goes over the limit. Then
// it calls over (which fails the session, so that its writer sends the
// disconnect and close frames and sockjs-go closes this connection) and never
// returns data again.
func (c *limitConn) Read(p []byte) (int, error) {
	if c.tripped {
		return 0, c.drain()
	}
	n, err := c.Conn.Read(p)
	pass, over := c.lim.feed(p[:n])
	if !over {
		return n, err
	}
	c.tripped = true
	c.over()
	if pass > 0 {
		return pass, nil
	}
	return 0, c.drain()
}

// drain discards what the client still sends until the connection closes:
// leaving it unread would make the close reset the connection, and the
// client could lose the close frame on its way. The read deadline ends the
// wait if the session does not close this connection in time.
func (c *limitConn) drain() error {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.grace))
	var buf [512]byte
	for {
		if _, err := c.Conn.Read(buf[:]); err != nil {
			return err
		}
	}
}
