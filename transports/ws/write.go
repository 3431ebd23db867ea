package ws

import (
	"errors"
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

// TryWriteBatch writes the batch as WriteBatch does, without blocking: what
// the socket does not take at once waits in the transports.Conn for Flush.
func (t trySink) TryWriteBatch(batch []session.Item) (bool, error) {
	return t.out().Try(func() error { return t.writeBatch(batch, time.Now()) })
}

// Flush writes what TryWriteBatch kept.
func (t trySink) Flush() error { return t.out().Flush() }

func (t trySink) out() *transports.Conn { return t.raw.Conn.(*transports.Conn) }

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
	switch {
	case writeErr == nil:
		c.closeWith(d)
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
	}
	c.finish()
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
