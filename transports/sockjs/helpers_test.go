package sockjs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

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

// event is one thing a SockJS client saw: a frame (one JSON object of an
// a[...] message), the close frame, or the end of its transport.
type event struct {
	frame  frame
	msg    int // index of the SockJS message that carried the frame
	closed bool
	code   int
	reason string
	err    error
}

// The transports the raw clients speak.
const (
	viaWebsocket    = "websocket"
	viaXHRStreaming = "xhr_streaming"
	viaXHRPolling   = "xhr"
)

// client is a raw SockJS client of one transport: it decodes the SockJS
// framing itself (o, h, a[...], c[code,reason]).
type client struct {
	t      testing.TB
	events chan event
	msgs   int // SockJS messages seen, only touched by the reading goroutine
	send   func(payload []byte) error
	stop   func()
	done   chan struct{}
	url    string   // the session's URL, without the transport part
	raw    net.Conn // the WebSocket transport's connection
}

// dial opens a SockJS session over transport. query, if not empty, is added
// to every URL (sockjs-client keeps the query string of its base URL).
func dial(t testing.TB, e *testEnv, transport, query string) *client {
	t.Helper()
	c := &client{t: t, events: make(chan event, 4096), done: make(chan struct{}), url: wiretest.SockJSSession(e.base)}
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	q := ""
	if query != "" {
		q = "?" + query
	}
	switch transport {
	case viaWebsocket:
		u := "ws" + strings.TrimPrefix(c.url, "http") + "/websocket" + q
		conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
		if err != nil {
			cancel()
			t.Fatalf("dial %s: %v (%v)", u, err, resp)
		}
		c.stop = func() { cancel(); conn.Close() }
		c.raw = conn.UnderlyingConn()
		var wmu sync.Mutex
		c.send = func(p []byte) error {
			wmu.Lock()
			defer wmu.Unlock()
			return conn.WriteMessage(websocket.TextMessage, p)
		}
		go func() {
			defer close(c.done)
			for {
				_, data, err := conn.ReadMessage()
				if err != nil {
					c.push(event{err: err})
					return
				}
				if c.parse(data) {
					return
				}
			}
		}()
	case viaXHRStreaming, viaXHRPolling:
		c.send = func(p []byte) error { return c.xhrSend(p, q) }
		go func() {
			defer close(c.done)
			for ctx.Err() == nil {
				if c.poll(ctx, transport, q) {
					return
				}
			}
		}()
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	t.Cleanup(c.close)
	return c
}

func (c *client) close() {
	c.stop()
	<-c.done
}

func (c *client) push(ev event) {
	select {
	case c.events <- ev:
	default:
		c.t.Errorf("client event buffer full; dropped %+v", ev)
	}
}

// parse decodes one SockJS frame and reports whether it was the close frame.
func (c *client) parse(data []byte) bool {
	if len(bytes.TrimRight(data, "\n")) == 0 {
		return false
	}
	sf, err := wire.DecodeSockJS(data)
	switch {
	case err != nil:
		c.push(event{err: err})
		return true
	case sf.Kind == 'c':
		c.push(event{closed: true, code: sf.Code, reason: sf.Reason})
		return true
	}
	for _, fs := range sf.Messages {
		c.msgs++
		for _, f := range fs {
			c.push(event{frame: f, msg: c.msgs})
		}
	}
	return false
}

// anotherConnection is sockjs-go's answer to a receiving request while
// another one is attached to the session.
const anotherConnection = "c[2010,\"Another connection still open\"]\n"

// poll runs one xhr_streaming or xhr request and reports whether the session
// ended.
func (c *client) poll(ctx context.Context, transport, q string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/"+transport+q, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.push(event{err: err})
		return true
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.push(event{err: fmt.Errorf("%s: status %d", transport, resp.StatusCode)})
		return true
	}
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadBytes('\n')
		if string(line) == anotherConnection {
			// sockjs-go detaches an answered poll in a goroutine of its
			// own, so a client that asks again at once may find the old
			// receiver still attached. The session is unharmed: ask again.
			return false
		}
		if len(line) > 0 && c.parse(line) {
			return true
		}
		if errors.Is(err, io.EOF) {
			return false // a polling answer, or a stream at its response limit: ask again
		}
		if err != nil {
			c.push(event{err: err})
			return true
		}
	}
}

func (c *client) xhrSend(p []byte, q string) error {
	resp, err := http.Post(c.url+"/xhr_send"+q, "text/plain", bytes.NewReader(p))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("xhr_send: status %d: %s", resp.StatusCode, body)
	}
	return nil
}

// command sends each command as one SockJS message.
func (c *client) command(cmds ...string) {
	c.t.Helper()
	p, _ := json.Marshal(cmds)
	if err := c.send(p); err != nil {
		c.t.Fatalf("send %s: %v", p, err)
	}
}

// next returns the next event.
func (c *client) next() event {
	c.t.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-time.After(wiretest.WaitLimit):
		c.t.Fatal("timed out waiting for a SockJS frame")
		return event{}
	}
}

// frame returns the next frame that is not a ping, failing on anything else.
func (c *client) frame() (frame, int) {
	c.t.Helper()
	for {
		ev := c.next()
		switch {
		case ev.err != nil:
			c.t.Fatalf("transport failed: %v", ev.err)
		case ev.closed:
			c.t.Fatalf("session closed: c[%d,%q]", ev.code, ev.reason)
		case ev.frame.Type == "ping":
			continue
		}
		return ev.frame, ev.msg
	}
}

// expect returns the next frame, which must be of type typ.
func (c *client) expect(typ string) frame {
	c.t.Helper()
	f, _ := c.frame()
	if f.Type != typ {
		c.t.Fatalf("got a %q frame %+v, want %q", f.Type, f, typ)
	}
	return f
}

// expectDisconnect reads the disconnect frame and then the SockJS close
// frame, both with code and reason.
func (c *client) expectDisconnect(code int, reason string) {
	c.t.Helper()
	ev := c.skipTo("disconnect frame", func(ev event) bool { return ev.closed || ev.frame.Type == "disconnect" })
	if ev.closed {
		c.t.Fatalf("close frame c[%d,%q] before the disconnect frame", ev.code, ev.reason)
	}
	if ev.frame.Code != code || ev.frame.Reason != reason {
		c.t.Fatalf("disconnect %d %q, want %d %q", ev.frame.Code, ev.frame.Reason, code, reason)
	}
	c.expectClose(code, reason)
}

// expectClose skips frames up to the SockJS close frame, which must carry
// code and reason.
func (c *client) expectClose(code int, reason string) {
	c.t.Helper()
	ev := c.skipTo("close frame", func(ev event) bool { return ev.closed })
	if ev.code != code || ev.reason != reason {
		c.t.Fatalf("close frame c[%d,%q], want c[%d,%q]", ev.code, ev.reason, code, reason)
	}
}

// skipTo returns the first event that stop accepts, failing the test if
// the transport fails before it.
func (c *client) skipTo(what string, stop func(event) bool) event {
	c.t.Helper()
	for {
		ev := c.next()
		if ev.err != nil {
			c.t.Fatalf("transport failed before the %s: %v", what, ev.err)
		}
		if stop(ev) {
			return ev
		}
	}
}

// subscribe sends a subscribe command and returns the `subscribed` frame.
func (c *client) subscribe(id int, ch string, since *session.Position) frame {
	c.t.Helper()
	c.command(string(wire.Subscribe(uint64(id), ch, (*wire.Position)(since))))
	f := c.expect("subscribed")
	if f.ID != uint64(id) || f.Channel != ch {
		c.t.Fatalf("subscribed %+v, want id %d channel %s", f, id, ch)
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

// openStalledStream starts an xhr_streaming request on a raw connection with
// a small receive buffer, reads up to the SockJS open frame, and then never
// reads again. It returns the session's URL.
func openStalledStream(t testing.TB, e *testEnv) string {
	t.Helper()
	d := wiretest.SmallReceiveBuffer(4096)
	conn, err := d.Dial("tcp", e.Srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sess := wiretest.SockJSSession(e.base)
	path := strings.TrimPrefix(sess, e.Srv.URL)
	fmt.Fprintf(conn, "POST %s/xhr_streaming HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n", path, e.Srv.Listener.Addr())
	_ = conn.SetReadDeadline(time.Now().Add(wiretest.WaitLimit))
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
