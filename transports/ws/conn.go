package ws

import (
	"bufio"
	"errors"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/internal/wsframe"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// Why a session ended when the client, not the server, ended it. They are
// recorded by Session.Close (logs, metrics) and never sent: the WebSocket
// codes say the same thing.
var (
	clientClosed   = session.ClosedByClient
	connectionLost = session.ConnectionLost
)

// conn is one upgraded connection. It is kept small: an idle connection
// costs this, the session, gorilla's Conn with its read buffer, the pump's
// timer, and one goroutine parked in a read. The writer (a transports.Pump
// with conn as its Sink) holds a goroutine only while it has something to
// write.
type conn struct {
	h  *Handler
	ws *websocket.Conn
	s  *session.Session
	// raw and br are what gorilla reads through (see rawconn.go); nil if
	// the Upgrader did not take them, and the reader then never waits
	// outside gorilla.
	raw *rawConn
	br  *bufio.Reader
	// readerDone is closed when the read loop has returned.
	readerDone chan struct{}
	// peerGone is set by the reader when the client closed or the connection
	// broke: the writer then closes without writing anything more, except
	// closeEcho, the close frame that answers the client's.
	peerGone  atomic.Bool
	closeEcho atomic.Pointer[[]byte]
	// The reader writes nothing itself: it leaves the pong for the client's
	// latest ping here and pokes the pump, the connection's one writer.
	pump    *transports.Pump
	pongDue atomic.Pointer[string]
	// out is the connection every server frame is written to (write.go).
	// closeSent is set once a close frame of ours has gone out; only the
	// pump's goroutine touches it.
	out       *netconn.Conn
	closeSent bool
}

// trySink is the pump's sink when gorilla reads through rawConn, whose
// netconn.Conn is then the only writer's: batches are written without
// blocking, on the shared writers. out is that Conn.
type trySink struct {
	*conn
	out *netconn.Conn
}

var (
	_ transports.TrySink = trySink{}
	_ transports.Poker   = (*conn)(nil)
)

// serve writes the hello frame and starts the connection's goroutines.
func (h *Handler) serve(ws *websocket.Conn, s *session.Session, hj *hijacker) {
	now := time.Now()
	c := &conn{h: h, ws: ws, s: s, readerDone: make(chan struct{}), out: serverOut(ws, hj)}
	if hj.raw != nil && ws.UnderlyingConn() == net.Conn(hj.raw) {
		c.raw, c.br = hj.raw, hj.br
	}
	if err := c.WriteBatch([]session.Item{{Frame: s.Hello()}}); err != nil {
		ws.Close()
		s.Close(writeDisconnect(err))
		h.log.Debug("websocket hello failed", "session", s.ID(), "err", err)
		return
	}
	_ = ws.SetReadDeadline(now.Add(h.pongWait))
	ws.SetPongHandler(c.pong)
	ws.SetPingHandler(c.ping)
	ws.SetCloseHandler(c.closeFrame)
	// The reader and the pump use the server-wide context: a per-connection
	// one would cost an idle connection a few hundred bytes for nothing,
	// since commands in flight when the client leaves are short broker calls.
	// The pump exists before the reader, which may poke it.
	var sink transports.Sink = c
	if c.raw != nil {
		sink = trySink{c, c.out}
	}
	c.pump = h.cfg.Writers.StartPump(h.cfg.Context, s, sink, h.node.Ping(), h.log)
	go c.readLoop()
}

// closeWith ends the connection for d: a disconnect frame and a close frame
// with the same code and reason, unless the client is already gone, then a
// short wait for the client's close frame. The caller closes the socket.
//
// It reports false when the frames could not be written: the connection is
// then aborted. So is a connection given up on (transports.GaveUp) whose
// socket still holds bytes from before: the frames would only queue behind
// what the client is not reading.
func (c *conn) closeWith(d session.Disconnect) bool {
	gone := c.peerGone.Load() // before the echo, which the reader stores first
	if echo := c.closeEcho.Load(); echo != nil {
		if b, err := wsframe.AppendControl(nil, wsframe.OpClose, *echo); err == nil {
			_ = c.writeClose(b)
		}
		return true
	}
	if gone {
		return true
	}
	if transports.GaveUp(d) && c.out.Pending() {
		return false
	}
	if c.writeClose(appendClosing(nil, d)) != nil {
		return false
	}
	if d == session.DisconnectStale {
		// The client answered nothing for the pong wait (its reader has
		// stopped already, so there is no close frame to wait for): it
		// reads nothing, and a graceful close would keep what the socket
		// holds in FIN-WAIT-1.
		return false
	}
	t := time.NewTimer(c.h.closeGrace)
	defer t.Stop()
	select {
	case <-c.readerDone: // the client answered our close frame, or the read side failed
	case <-t.C:
		// A client given up on that does not answer the close frame is not
		// reading: what the socket holds would wait in FIN-WAIT-1.
		return !transports.GaveUp(d)
	}
	return true
}

// serverOut is the netconn.Conn that every server frame of ws is written
// to: the hijacker's, under rawConn, or, if the Upgrader did not take it,
// one around the upgraded connection.
func serverOut(ws *websocket.Conn, hj *hijacker) *netconn.Conn {
	if hj.raw != nil && ws.UnderlyingConn() == net.Conn(hj.raw) {
		if out, ok := hj.raw.Conn.(*netconn.Conn); ok {
			return out
		}
	}
	return netconn.NewConn(ws.UnderlyingConn())
}

// finish runs last in the writer (from End): it drops the connection, which
// ends the reader, and releases the session once nothing uses it any more.
// abort resets the connection instead of closing it (netconn.Abort), so
// that the kernel does not keep what the client never took.
func (c *conn) finish(abort bool) {
	if abort {
		_ = netconn.Abort(c.out) // rawConn hides the socket; out does not
	} else {
		c.ws.Close()
	}
	<-c.readerDone
	d := c.s.Reason()
	c.s.Close(d)
	c.h.log.Debug("websocket closed", "session", c.s.ID(), "code", d.Code, "reason", d.Reason)
}

// panicked ends the session with DisconnectInternal after a panic in the
// reader, which runs outside any HTTP middleware (the pump recovers the
// writer's own). It is
// called from the deferred recover, so the stack is still the panic's.
func (c *conn) panicked(where string, v any) {
	c.h.log.Error("panic in websocket "+where, "session", c.s.ID(), "panic", v, "stack", string(debug.Stack()))
	c.s.Fail(session.DisconnectInternal)
}

// writeDisconnect classifies a failed write: one that hit its deadline is a
// write timeout; ErrCloseSent means a close frame has gone out (gorilla's
// reader sends one on a protocol error); anything else means the
// connection is gone.
func writeDisconnect(err error) session.Disconnect {
	switch {
	case isTimeout(err):
		return session.DisconnectWriteTimeout
	case errors.Is(err, websocket.ErrCloseSent):
		return clientClosed
	}
	return connectionLost
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// closeMessage is the close frame payload for d; the reason is cut to what a
// control frame can carry, on a UTF-8 boundary.
func closeMessage(d session.Disconnect) []byte {
	return wsframe.ClosePayload(d.Code, d.Reason)
}
