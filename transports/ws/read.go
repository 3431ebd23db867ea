package ws

import (
	"errors"
	"io"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/session"
)

// errBinary answers a binary message: the protocol is JSON text.
var errBinary = &session.Error{Code: 400, Reason: "binary frames are not supported"}

// readLoop reads client messages until the connection fails. After the
// session has ended it keeps reading, and discarding, so the client's close
// frame is seen and the close handshake completes.
func (c *conn) readLoop() {
	defer close(c.readerDone)
	defer c.recoverReader()
	// gorilla's own read limit answers with close code 1009 and then refuses
	// to send anything else, so the limit is enforced here to send 3501.
	limit := int64(c.h.node.Limits().MaxMessageBytes)
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.s.Done() {
			continue // NextReader discards the rest of this message
		}
		data, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			c.readFailed(err)
			return
		}
		if int64(len(data)) > limit {
			c.s.Fail(session.DisconnectMessageTooLarge)
			continue
		}
		c.alive()
		if typ == websocket.BinaryMessage {
			c.s.Send(session.ErrorFrame(0, errBinary))
			continue
		}
		// An error means the session has ended; the loop drains until close.
		_ = c.s.HandleCommand(c.h.ctx, data)
	}
}

// recoverReader handles a panic in the reader: the writer then sends the
// disconnect and closes.
func (c *conn) recoverReader() {
	if v := recover(); v != nil {
		c.panicked("reader", v)
	}
}

// readFailed records why reading stopped.
func (c *conn) readFailed(err error) {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure:
		// gorilla has answered the close frame: nothing more can be written.
		// (1006 is gorilla's report of a connection dropped without one.)
		c.peerGone.Store(true)
		c.s.Fail(clientClosed)
	case isTimeout(err):
		c.s.Fail(session.DisconnectStale)
	default:
		c.peerGone.Store(true)
		c.s.Fail(connectionLost)
	}
}

// alive extends the read deadline: the client has shown it is there.
func (c *conn) alive() {
	_ = c.ws.SetReadDeadline(time.Now().Add(c.h.pongWait))
}

// pong is the pong handler.
func (c *conn) pong(string) error {
	c.alive()
	return nil
}

// ping is the ping handler: a client ping shows it is alive, and is answered
// as gorilla's default handler does.
func (c *conn) ping(data string) error {
	c.alive()
	err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.h.cfg.WriteTimeout))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) && !isTimeout(err) {
		return err
	}
	return nil
}
