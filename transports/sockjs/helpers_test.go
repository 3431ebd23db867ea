package sockjs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

// testDisconnectDelay keeps closed SockJS sessions from lingering past the
// leak check.
const testDisconnectDelay = 500 * time.Millisecond

// envConfig configures a test server. Zero fields take test defaults;
// Options.DisconnectDelay defaults to testDisconnectDelay.
type envConfig = wiretest.TransportEnv[Options]

// testEnv is a node with a memory broker and the SockJS handler mounted at
// /connect/sockjs on a loopback test server.
type testEnv struct {
	*wiretest.Env
	base string // http://127.0.0.1:port/connect/sockjs
}

func newEnv(t testing.TB, ec envConfig) *testEnv {
	t.Helper()
	if ec.Options.DisconnectDelay == 0 {
		ec.Options.DisconnectDelay = testDisconnectDelay
	}
	we := ec.Start(t, wiretest.At("/connect/sockjs/", New))
	return &testEnv{Env: we, base: we.Srv.URL + "/connect/sockjs"}
}

// eventually waits until cond holds, failing the test after wiretest.WaitLimit.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	wiretest.Eventually(t, what, cond)
}

// frame is a decoded server frame.
type frame = wire.Frame

// event is one thing a SockJS client saw.
type event = wiretest.SockJSEvent

// The transports the raw clients speak.
const (
	viaWebsocket    = wiretest.SockJSWebsocket
	viaXHRStreaming = wiretest.SockJSXHRStreaming
	viaXHRPolling   = wiretest.SockJSXHRPolling
)

// client is a raw SockJS client of one transport, with the tests'
// expectations of what it reads.
type client struct {
	*wiretest.SockJSClient
}

// dial opens a SockJS session on e over transport. query, if not empty, is
// added to every URL.
func dial(t testing.TB, e *testEnv, transport, query string) *client {
	t.Helper()
	return &client{wiretest.DialSockJS(t, e.base, transport, query)}
}

// command sends each command as one SockJS message.
func (c *client) command(cmds ...string) {
	c.T.Helper()
	p, _ := json.Marshal(cmds)
	if err := c.Send(p); err != nil {
		c.T.Fatalf("send %s: %v", p, err)
	}
}

// frame returns the next frame that is not a ping, failing on anything else.
func (c *client) frame() (frame, int) {
	c.T.Helper()
	for {
		ev := c.Next()
		switch {
		case ev.Err != nil:
			c.T.Fatalf("transport failed: %v", ev.Err)
		case ev.Closed:
			c.T.Fatalf("session closed: c[%d,%q]", ev.Code, ev.Reason)
		case ev.Frame.Type == "ping":
			continue
		}
		return ev.Frame, ev.Msg
	}
}

// expect returns the next frame, which must be of type typ.
func (c *client) expect(typ string) frame {
	c.T.Helper()
	f, _ := c.frame()
	if f.Type != typ {
		c.T.Fatalf("got a %q frame %+v, want %q", f.Type, f, typ)
	}
	return f
}

// expectDisconnect reads the disconnect frame and then the SockJS close
// frame, both with code and reason.
func (c *client) expectDisconnect(code int, reason string) {
	c.T.Helper()
	ev := c.skipTo("disconnect frame", func(ev event) bool { return ev.Closed || ev.Frame.Type == "disconnect" })
	if ev.Closed {
		c.T.Fatalf("close frame c[%d,%q] before the disconnect frame", ev.Code, ev.Reason)
	}
	if ev.Frame.Code != code || ev.Frame.Reason != reason {
		c.T.Fatalf("disconnect %d %q, want %d %q", ev.Frame.Code, ev.Frame.Reason, code, reason)
	}
	c.expectClose(code, reason)
}

// expectClose skips frames up to the SockJS close frame, which must carry
// code and reason.
func (c *client) expectClose(code int, reason string) {
	c.T.Helper()
	ev := c.skipTo("close frame", func(ev event) bool { return ev.Closed })
	if ev.Code != code || ev.Reason != reason {
		c.T.Fatalf("close frame c[%d,%q], want c[%d,%q]", ev.Code, ev.Reason, code, reason)
	}
}

// skipTo returns the first event that stop accepts, failing the test if
// the transport fails before it.
func (c *client) skipTo(what string, stop func(event) bool) event {
	c.T.Helper()
	for {
		ev := c.Next()
		if ev.Err != nil {
			c.T.Fatalf("transport failed before the %s: %v", what, ev.Err)
		}
		if stop(ev) {
			return ev
		}
	}
}

// subscribe sends a subscribe command and returns the `subscribed` frame.
func (c *client) subscribe(id int, ch string, since *session.Position) frame {
	c.T.Helper()
	c.command(string(wire.Subscribe(uint64(id), ch, (*wire.Position)(since))))
	f := c.expect("subscribed")
	if f.ID != uint64(id) || f.Channel != ch {
		c.T.Fatalf("subscribed %+v, want id %d channel %s", f, id, ch)
	}
	return f
}

// publish publishes each value to ch.
func publish(t testing.TB, n *session.Node, ch string, values ...string) session.PublishResult {
	t.Helper()
	var res session.PublishResult
	for _, v := range values {
		var err error
		res, err = n.Publish(context.Background(), ch, json.RawMessage(v), "")
		if err != nil {
			t.Fatalf("publish %s: %v", v, err)
		}
	}
	return res
}

// numbers returns the JSON numbers from..to as strings.
func numbers(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

// openStalledStream starts an xhr_streaming request on a stalled
// connection (wiretest.DialStalled), reads up to the SockJS open frame, and
// then never reads again. It returns the session's URL.
func openStalledStream(t testing.TB, e *testEnv) string {
	t.Helper()
	sess := wiretest.SockJSSession(e.base)
	conn, err := wiretest.DialStalled(e.Srv.Listener.Addr().String(), http.MethodPost, strings.TrimPrefix(sess, e.Srv.URL)+"/xhr_streaming")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var seen []byte
	buf := make([]byte, 512)
	for !bytes.Contains(seen, []byte("\r\no\n")) {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("stalled stream: reading up to the open frame: %v (read %q)", err, seen)
		}
		seen = append(seen, buf[:n]...)
	}
	return sess
}
