package ws

import (
	"errors"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/session"
)

var newline = []byte{'\n'}

// writeLoop is the connection's only writer of data frames. It sends what
// the session queues, heartbeats when idle, and finally the disconnect.
func (c *conn) writeLoop() {
	defer c.finish()
	defer c.recoverWriter()
	ping := c.h.node.Ping()
	// lastData drives the {"type":"ping"} frame, sent only when the client
	// has seen nothing for a ping interval. lastPing drives protocol pings,
	// sent every interval even while data flows: only their pongs prove
	// the client is alive, since a push-only client never sends anything.
	lastData := time.Now()
	lastPing := lastData
	var batch []session.Item
	for {
		wait := time.Until(lastData.Add(ping))
		wait = min(wait, time.Until(lastPing.Add(ping)))
		var err error
		batch, err = c.s.Next(c.h.ctx, wait, batch)
		if err != nil {
			c.closeWith(c.stopReason(err))
			return
		}
		now := time.Now()
		switch {
		case len(batch) > 0:
			err = c.writeBatch(batch, now)
			lastData = now
		case now.Sub(lastData) >= ping:
			err = c.writeFrame(session.PingFrame, now)
			lastData = now
		}
		if err == nil && now.Sub(lastPing) >= ping {
			err = c.ws.WriteControl(websocket.PingMessage, nil, now.Add(c.h.cfg.WriteTimeout))
			lastPing = now
		}
		if err != nil {
			d := writeDisconnect(err)
			if d != session.DisconnectWriteTimeout {
				c.peerGone.Store(true)
			}
			// A write that failed leaves the connection unusable: record
			// why (unless the session had already failed, for example as a
			// slow consumer while this write was stuck) and drop it.
			c.s.Fail(d)
			return
		}
	}
}

// stopReason turns what ended Next into the disconnect to send: the
// session's own reason, or shutdown when the server-wide context ended.
func (c *conn) stopReason(err error) session.Disconnect {
	var d session.Disconnect
	if errors.As(err, &d) {
		return d
	}
	c.s.Fail(session.DisconnectShutdown)
	return c.s.Reason()
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

// recoverWriter handles a panic in the writer: the message being written may
// be cut short, so instead of a disconnect frame the client gets a bare close
// frame (control frames may sit between the fragments of a message).
func (c *conn) recoverWriter() {
	if v := recover(); v != nil {
		c.panicked("writer", v)
		d := session.DisconnectInternal
		_ = c.ws.WriteControl(websocket.CloseMessage, closeMessage(d), time.Now().Add(c.h.cfg.WriteTimeout))
	}
}
