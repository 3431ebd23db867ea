package ws

import (
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

var newline = []byte{'\n'}

// The connection's writer is a transports.Pump: it runs only while there is
// something to send, and conn is its Sink.

// WriteBatch writes the frames as one text message, separated by "\n".
func (c *conn) WriteBatch(batch []session.Item) error {
	return c.writeBatch(batch, time.Now())
}

// TryWriteBatch writes the batch as one text message, as WriteBatch does,
// without blocking and without gorilla: a server's unfragmented,
// uncompressed text frame is a header and the payload, and gorilla's write
// path would wait for its own lock, which a reader's protocol-error close
// frame may hold while the client reads nothing. The pump's ownership keeps
// this apart from gorilla's other writers of data frames; gorilla's control
// frames are single writes that netconn.Conn keeps whole.
func (t trySink) TryWriteBatch(batch []session.Item) (bool, error) {
	bp := framePool.Get().(*[]byte)
	b := appendTextFrame((*bp)[:0], batch)
	flushed, err := t.out.TryWrite(b)
	if cap(b) <= maxPooledFrame {
		*bp = b[:0]
		framePool.Put(bp)
	}
	return flushed, err
}

// TryHeartbeat writes Heartbeat's frames without blocking, as one write:
// the ping frame when idle, then a protocol ping (unmasked, no payload)
// when probing.
func (t trySink) TryHeartbeat(idle, probe bool) (bool, error) {
	var b [64]byte
	out := b[:0]
	if idle {
		out = appendTextFrame(out, []session.Item{{Frame: session.PingFrame}})
	}
	if probe {
		out = append(out, 0x80|websocket.PingMessage, 0)
	}
	return t.out.TryWrite(out)
}

// Flush writes what TryWriteBatch or TryHeartbeat kept.
func (t trySink) Flush() error { return t.out.Flush(time.Now().Add(t.h.cfg.WriteTimeout)) }

// framePool holds the buffers TryWriteBatch builds frames in: an idle
// connection keeps none.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledFrame = 64 << 10

// appendTextFrame appends one final, unmasked text frame whose payload is
// the batch's frames separated by "\n" (RFC 6455 §5.2).
func appendTextFrame(b []byte, batch []session.Item) []byte {
	size := len(batch) - 1
	for i := range batch {
		size += len(batch[i].Frame)
	}
	b = append(b, 0x80|websocket.TextMessage)
	switch {
	case size < 126:
		b = append(b, byte(size))
	case size <= 0xFFFF:
		b = append(b, 126, byte(size>>8), byte(size))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(size))
	}
	for i := range batch {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, batch[i].Frame...)
	}
	return b
}

// Poked answers the client's latest ping.
func (c *conn) Poked() error {
	data := c.pongDue.Swap(nil)
	if data == nil {
		return nil
	}
	err := c.ws.WriteControl(websocket.PongMessage, []byte(*data), time.Now().Add(c.h.cfg.WriteTimeout))
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
	now := time.Now()
	if idle {
		if err := c.writeFrame(session.PingFrame, now); err != nil {
			return err
		}
	}
	if probe {
		return c.ws.WriteControl(websocket.PingMessage, nil, now.Add(c.h.cfg.WriteTimeout))
	}
	return nil
}

// End closes the connection: with a disconnect frame and close frame for d
// when the session ended, with a bare close frame after a panic in the
// writer (the message being written may be cut short, and control frames
// may sit between the fragments of a message), and with nothing when a
// write failed. Then it releases the session.
func (c *conn) End(d session.Disconnect, writeErr error) {
	abort := false
	switch {
	case writeErr == nil:
		abort = !c.closeWith(d)
	case errors.Is(writeErr, transports.ErrPumpPanicked):
		_ = c.ws.WriteControl(websocket.CloseMessage, closeMessage(session.DisconnectInternal), time.Now().Add(c.h.cfg.WriteTimeout))
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

// writeBatch writes the frames as one text message, separated by "\n".
func (c *conn) writeBatch(batch []session.Item, now time.Time) error {
	if len(batch) == 1 {
		return c.writeFrame(batch[0].Frame, now) // gorilla's allocation-free path
	}
	_ = c.ws.SetWriteDeadline(now.Add(c.h.cfg.WriteTimeout))
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	for i := range batch {
		if i > 0 {
			if _, err := w.Write(newline); err != nil {
				return err
			}
		}
		if _, err := w.Write(batch[i].Frame); err != nil {
			return err
		}
	}
	return w.Close()
}

func (c *conn) writeFrame(frame []byte, now time.Time) error {
	_ = c.ws.SetWriteDeadline(now.Add(c.h.cfg.WriteTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}
