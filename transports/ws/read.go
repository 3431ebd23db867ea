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
// frame is seen and the close handshake completes. Between messages, when
// gorilla has nothing buffered, it waits for the client in await, whose
// stack is shallow: that is where an idle connection's goroutine sits.
func (c *conn) readLoop() {
	defer close(c.readerDone)
	defer c.recoverReader()
	// gorilla's own read limit answers with close code 1009 and then refuses
	// to send anything else, so the limit is enforced here to send 3501.
	limit := int64(c.h.node.Limits().MaxMessageBytes)
	between := true // gorilla is between messages
	for {
		// await may only take bytes off the socket at a message boundary
		// with gorilla's buffer empty: anywhere else they belong to a frame.
		if between && c.raw != nil && c.br.Buffered() == 0 {
			if err := c.await(); err != nil {
				c.readFailed(err)
				return
			}
		}
		var ok bool
		if ok, between = c.readMessageAside(limit); !ok {
			return
		}
	}
}

// readMessageAside runs readMessage on a goroutine of its own and waits for
// it. Reading a message and handling its command (a subscribe reads
// history) need a deep stack, and a goroutine keeps the largest stack it
// has had until garbage collections halve it, one halving per cycle; the
// reader, which an idle connection keeps, stays at the minimum instead. A
// client sends few messages (the pongs await takes do not come here), so the
// extra goroutine costs little.
func (c *conn) readMessageAside(limit int64) (ok, between bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				c.panicked("reader", v)
				ok = false
			}
		}()
		ok, between = c.readMessage(limit)
	}()
	<-done
	return ok, between
}

// readMessage reads and handles one message. ok is false when reading
// failed; between is false when the message was left unread (the next
// NextReader discards the rest). It is kept out of readLoop so that
// readLoop's frame, which stays on the stack of an idle connection, is small.
//
//go:noinline
func (c *conn) readMessage(limit int64) (ok, between bool) {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		c.readFailed(err)
		return false, false
	}
	if c.s.Done() {
		return true, false
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		c.readFailed(err)
		return false, false
	}
	if int64(len(data)) > limit {
		c.s.Fail(session.DisconnectMessageTooLarge)
		return true, false
	}
	c.alive()
	if typ == websocket.BinaryMessage {
		c.s.Send(session.ErrorFrame(0, errBinary))
		return true, true
	}
	// An error means the session has ended; the loop drains until close.
	_ = c.s.HandleCommand(c.h.cfg.Context, data)
	return true, true
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
		// The client closed: the writer answers with closeEcho and writes
		// nothing else. (1006 is gorilla's report of a connection dropped
		// without a close frame.)
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

// ping is the ping handler: a client ping shows it is alive, and is
// answered by the pump (Poked) with a pong that carries the latest ping's
// data, as RFC 6455 allows. The reader never writes: a client that sends
// pings and reads nothing would otherwise block it, and with it whichever
// writer waits for the connection.
func (c *conn) ping(data string) error {
	c.alive()
	c.pongDue.Store(&data)
	c.pump.Poke()
	return nil
}

// closeFrame is the close handler: it leaves the answering close frame
// (the client's code, as gorilla's default handler sends) to the writer's
// End, for the same reason.
func (c *conn) closeFrame(code int, _ string) error {
	msg := []byte{}
	if code != websocket.CloseNoStatusReceived {
		msg = websocket.FormatCloseMessage(code, "")
	}
	c.closeEcho.Store(&msg)
	return nil
}
