package ws

import (
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/wsframe"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// Every frame the server sends is built by this package (with
// internal/wsframe) and written in one netconn.Conn write: batches and
// heartbeats without blocking on the shared writers (trySink), and
// everything else (a batch or heartbeat the socket did not take at once,
// pongs, the hello, the disconnect and close frames) on the pump's own
// goroutine with a blocking write under the write deadline. Gorilla does the
// handshake and reads the client's frames; the only frame it writes is its
// own close frame on a protocol error (rawConn.Write notes it).

// The connection's writer is a transports.Pump: it runs only while there is
// something to send, and conn is its Sink.

// WriteBatch writes the frames as one text message, separated by "\n".
func (c *conn) WriteBatch(batch []session.Item) error {
	bp := framePool.Get().(*[]byte)
	b := appendTextFrame((*bp)[:0], batch)
	err := c.write(b)
	putFrame(bp, b)
	return err
}

// TryWriteBatch writes the batch as one text message, as WriteBatch does,
// without blocking: gorilla's write path would wait for its own lock, which
// a reader's protocol-error close frame may hold while the client reads
// nothing. The pump's ownership keeps this apart from the connection's
// other writes; gorilla's protocol-error close is a single write that
// netconn.Conn keeps whole.
func (t trySink) TryWriteBatch(batch []session.Item) (bool, error) {
	bp := framePool.Get().(*[]byte)
	b := appendTextFrame((*bp)[:0], batch)
	flushed, err := t.out.TryWrite(b)
	putFrame(bp, b)
	return flushed, err
}

// putFrame gives a frame's buffer back to framePool, unless a burst made it
// large.
func putFrame(bp *[]byte, b []byte) {
	if cap(b) <= maxPooledFrame {
		*bp = b[:0]
		framePool.Put(bp)
	}
}

// TryHeartbeat writes Heartbeat's frames without blocking, as one write.
func (t trySink) TryHeartbeat(idle, probe bool) (bool, error) {
	var b [64]byte
	return t.out.TryWrite(appendHeartbeat(b[:0], idle, probe))
}

// appendHeartbeat appends the ping frame when idle, then a protocol ping
// (no payload) when probing.
func appendHeartbeat(b []byte, idle, probe bool) []byte {
	if idle {
		b = appendTextFrame(b, []session.Item{{Frame: session.PingFrame}})
	}
	if probe {
		b, _ = wsframe.AppendControl(b, wsframe.OpPing, nil) // no payload: within the limit
	}
	return b
}

// Flush writes what TryWriteBatch or TryHeartbeat kept.
func (t trySink) Flush() error { return t.out.Flush(time.Now().Add(t.h.cfg.WriteTimeout)) }

// framePool holds the buffers frames are built in: an idle connection keeps
// none.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledFrame = 64 << 10

// appendTextFrame appends one final, unmasked text frame whose payload is
// the batch's frames separated by "\n" (RFC 6455 §5.2).
func appendTextFrame(b []byte, batch []session.Item) []byte {
	size := len(batch) - 1
	for i := range batch {
		size += len(batch[i].Frame)
	}
	b = wsframe.AppendHeader(b, wsframe.OpText, size)
	for i := range batch {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, batch[i].Frame...)
	}
	return b
}

// appendClosing appends a disconnect frame for d and the close frame with
// the same code and reason: how every server-initiated close ends.
func appendClosing(b []byte, d session.Disconnect) []byte {
	b = appendTextFrame(b, []session.Item{{Frame: session.DisconnectFrame(d)}})
	b, _ = wsframe.AppendControl(b, wsframe.OpClose, closeMessage(d)) // closeMessage fits
	return b
}

// write writes b, whole frames, with a blocking write under the write
// deadline. After a close frame has gone out (ours, or gorilla's on a
// protocol error) nothing more may be sent: it returns
// websocket.ErrCloseSent, as gorilla's writers did.
func (c *conn) write(b []byte) error {
	if c.closeSent || (c.raw != nil && c.raw.closeSent.Load()) {
		return websocket.ErrCloseSent
	}
	if err := c.out.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout)); err != nil {
		return err
	}
	_, err := c.out.Write(b)
	return err
}

// writeClose writes b, which ends with a close frame: nothing is written
// after it.
func (c *conn) writeClose(b []byte) error {
	err := c.write(b)
	c.closeSent = true
	return err
}

// Poked answers the client's latest ping.
func (c *conn) Poked() error {
	data := c.pongDue.Swap(nil)
	if data == nil {
		return nil
	}
	var buf [2 + wsframe.MaxControlPayload]byte
	b, err := wsframe.AppendControl(buf[:0], wsframe.OpPong, []byte(*data))
	if err != nil { // gorilla's reader refuses a longer ping: cannot happen
		return err
	}
	err = c.write(b)
	if errors.Is(err, websocket.ErrCloseSent) {
		return nil // closing: the close frame is the last word
	}
	return err
}

// Heartbeat sends a {"type":"ping"} frame to a client that has seen nothing
// for a ping interval, and a protocol ping every interval even while data
// flows: only its pong proves the client is alive, since a push-only client
// never sends anything.
func (c *conn) Heartbeat(idle, probe bool) error {
	var b [64]byte
	return c.write(appendHeartbeat(b[:0], idle, probe))
}

// End closes the connection: with a disconnect frame and close frame for d
// when the session ended, with a bare close frame after a panic in the
// writer (the message being written may be cut short), and with nothing
// when a write failed. Then it releases the session.
func (c *conn) End(d session.Disconnect, writeErr error) {
	abort := false
	switch {
	case writeErr == nil:
		abort = !c.closeWith(d)
	case errors.Is(writeErr, transports.ErrPumpPanicked):
		b, _ := wsframe.AppendControl(nil, wsframe.OpClose, closeMessage(session.DisconnectInternal))
		_ = c.writeClose(b)
	default:
		wd := writeDisconnect(writeErr)
		if wd != session.DisconnectWriteTimeout {
			c.peerGone.Store(true)
		}
		// Recorded unless the session had already failed (for example as a
		// slow consumer while this write was stuck).
		c.s.Fail(wd)
		abort = true // what the socket holds will never be taken
	}
	c.finish(abort)
}
