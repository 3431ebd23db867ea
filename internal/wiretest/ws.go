package wiretest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/session"
)

// DialWS opens a WebSocket to u with gorilla's Dialer (d, or a default one),
// within WaitLimit.
func DialWS(u string, header http.Header, d *websocket.Dialer) (*websocket.Conn, *http.Response, error) {
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: WaitLimit}
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	return d.DialContext(ctx, u, header)
}

// WSClient is a test's WebSocket connection, read as frames. Its methods
// fail the test on an error and belong to the test's goroutine.
type WSClient struct {
	T        testing.TB
	Conn     *websocket.Conn
	Pending  []wire.Frame // frames of the last message not yet returned by Next
	Messages int          // WebSocket messages read so far
}

// NewWSClient wraps conn, closed when the test ends.
func NewWSClient(tb testing.TB, conn *websocket.Conn) *WSClient {
	tb.Cleanup(func() { conn.Close() })
	return &WSClient{T: tb, Conn: conn}
}

// ReadMessage reads one WebSocket message, which must be text, and decodes
// its frames.
func (c *WSClient) ReadMessage() ([]wire.Frame, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(WaitLimit))
	typ, data, err := c.Conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	if typ != websocket.TextMessage {
		return nil, fmt.Errorf("message type %d, want text", typ)
	}
	c.Messages++
	return wire.DecodeFrames(data)
}

// Next returns the next frame.
func (c *WSClient) Next() wire.Frame {
	c.T.Helper()
	for len(c.Pending) == 0 {
		fs, err := c.ReadMessage()
		if err != nil {
			c.T.Fatalf("read: %v", err)
		}
		c.Pending = fs
	}
	f := c.Pending[0]
	c.Pending = c.Pending[1:]
	return f
}

// NextNonPing skips heartbeat frames.
func (c *WSClient) NextNonPing() wire.Frame {
	c.T.Helper()
	for {
		if f := c.Next(); f.Type != "ping" {
			return f
		}
	}
}

// Send sends one text message.
func (c *WSClient) Send(s string) {
	c.T.Helper()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(WaitLimit))
	if err := c.Conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.T.Fatalf("send: %v", err)
	}
}

// Subscribe subscribes and returns the subscribed frame.
func (c *WSClient) Subscribe(id uint64, ch string, since *session.Position) wire.Frame {
	c.T.Helper()
	c.Send(string(wire.Subscribe(id, ch, (*wire.Position)(since))))
	f := c.NextNonPing()
	if f.Type != "subscribed" || f.ID != id || f.Channel != ch {
		c.T.Fatalf("subscribe %s: got %+v", ch, f)
	}
	return f
}

// ExpectDisconnect reads until the connection closes and checks that the
// last frame was a disconnect frame with code, reconnect and the close's
// reason, and that the WebSocket close code is code.
func (c *WSClient) ExpectDisconnect(code int, reconnect bool) {
	c.T.Helper()
	var last *wire.Frame
	for {
		for _, f := range c.Pending {
			last = &f
		}
		c.Pending = nil
		fs, err := c.ReadMessage()
		if err == nil {
			c.Pending = fs
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.T.Fatalf("read ended with %v, want close code %d", err, code)
		}
		if ce.Code != code {
			c.T.Errorf("close code %d (%q), want %d", ce.Code, ce.Text, code)
		}
		if last == nil || last.Type != "disconnect" || last.Code != code || last.Reconnect != reconnect || last.Reason != ce.Text {
			c.T.Errorf("last frame %+v, want disconnect %d reconnect %v with the close reason %q", last, code, reconnect, ce.Text)
		}
		return
	}
}

// WSURL is the WebSocket URL of path on the server at base (http://host or
// https://host): ws://host/path or wss://host/path.
func WSURL(base, path string) string {
	return "ws" + strings.TrimPrefix(base, "http") + path
}
