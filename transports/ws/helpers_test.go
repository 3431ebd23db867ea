package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

var debugLog = flag.Bool("ws.debug", false, "write the transport's debug log to stderr")

// allowedOrigin is the only cross-origin page the test servers accept.
const allowedOrigin = "http://app.example"

// waitLimit bounds every wait in these tests; reaching it is a failure, not
// a measurement.
const waitLimit = 10 * time.Second

// envConfig configures a test server. Zero fields take test defaults.
type envConfig struct {
	node      session.Config
	transport transports.Config
	opts      Options
	// connState, if set, sees every server-side connection (to shrink its
	// socket buffers, for example).
	connState func(net.Conn, http.ConnState)
}

// testEnv is a node with a memory broker and the WebSocket handler on a
// loopback test server.
type testEnv struct {
	node    *session.Node
	srv     *httptest.Server
	url     string // ws://127.0.0.1:port/connect/ws
	metrics *recorder
}

func newEnv(t testing.TB, ec envConfig) *testEnv {
	t.Helper()
	b := session.NewMemoryBroker(session.MemoryBrokerConfig{})
	ec.node.Broker = b
	if ec.node.Logger == nil {
		ec.node.Logger = testLogger()
	}
	rec := &recorder{closed: map[int]int{}}
	if ec.node.Metrics == nil {
		ec.node.Metrics = rec
	}
	n, err := session.New(ec.node)
	if err != nil {
		t.Fatal(err)
	}
	tc := ec.transport
	tc.Node = n
	if tc.CheckOrigin == nil {
		tc.CheckOrigin = func(r *http.Request) bool {
			o := r.Header.Get("Origin")
			return o == "" || o == allowedOrigin
		}
	}
	if tc.Logger == nil {
		tc.Logger = testLogger()
	}
	h, err := New(tc, ec.opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/connect/ws", h)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = ec.connState
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
		srv.Close()
		b.Close()
	})
	return &testEnv{node: n, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/connect/ws", metrics: rec}
}

func testLogger() *slog.Logger {
	if *debugLog {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// recorder is a session.Metrics that remembers how sessions closed.
type recorder struct {
	mu     sync.Mutex
	closed map[int]int // close code → sessions
	slow   int
}

func (r *recorder) SessionOpened(string) {}
func (r *recorder) SessionClosed(_ string, code int) {
	r.mu.Lock()
	r.closed[code]++
	r.mu.Unlock()
}
func (r *recorder) Published(bool)   {}
func (r *recorder) Delivered(string) {}
func (r *recorder) SlowClient(string) {
	r.mu.Lock()
	r.slow++
	r.mu.Unlock()
}

func (r *recorder) closedWith(code int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed[code]
}

// eventually waits until cond holds, failing the test after waitLimit.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// frame is a decoded server frame with every field a test may look at.
type frame struct {
	Type      string          `json:"type"`
	Session   string          `json:"session"`
	Transport string          `json:"transport"`
	Ping      int             `json:"ping"`
	Limits    *session.Limits `json:"limits"`
	ID        uint64          `json:"id"`
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset"`
	Epoch     string          `json:"epoch"`
	Data      json.RawMessage `json:"data"`
	Recovered *bool           `json:"recovered"`
	Code      int             `json:"code"`
	Reason    string          `json:"reason"`
	Reconnect bool            `json:"reconnect"`
}

// client is a test WebSocket client built on gorilla's Dialer.
type client struct {
	t        testing.TB
	ws       *websocket.Conn
	pending  []frame
	messages int // WebSocket messages read so far
}

type dialOptions struct {
	query  string
	header http.Header
	dialer *websocket.Dialer
}

func (e *testEnv) dialConn(o dialOptions) (*websocket.Conn, *http.Response, error) {
	d := o.dialer
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: waitLimit}
	}
	u := e.url
	if o.query != "" {
		u += "?" + o.query
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	return d.DialContext(ctx, u, o.header)
}

// dial connects and returns the client with its hello frame already read.
func (e *testEnv) dial(t testing.TB, o dialOptions) (*client, frame) {
	t.Helper()
	ws, resp, err := e.dialConn(o)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	hello := c.next()
	if hello.Type != "hello" {
		t.Fatalf("first frame %+v, want hello", hello)
	}
	return c, hello
}

// readMessage reads one WebSocket message and decodes its frames.
func (c *client) readMessage() ([]frame, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(waitLimit))
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if typ != websocket.TextMessage {
		return nil, fmt.Errorf("message type %d, want text", typ)
	}
	c.messages++
	var out []frame
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		var f frame
		if err := json.Unmarshal(line, &f); err != nil {
			return nil, fmt.Errorf("frame %q: %w", line, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// next returns the next frame, failing the test if there is none.
func (c *client) next() frame {
	c.t.Helper()
	for len(c.pending) == 0 {
		fs, err := c.readMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		c.pending = fs
	}
	f := c.pending[0]
	c.pending = c.pending[1:]
	return f
}

// nextNonPing skips heartbeat frames.
func (c *client) nextNonPing() frame {
	c.t.Helper()
	for {
		if f := c.next(); f.Type != "ping" {
			return f
		}
	}
}

func (c *client) send(s string) {
	c.t.Helper()
	_ = c.ws.SetWriteDeadline(time.Now().Add(waitLimit))
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// subscribe subscribes and returns the subscribed frame.
func (c *client) subscribe(id uint64, ch string, since *session.Position) frame {
	c.t.Helper()
	cmd := map[string]any{"type": "subscribe", "id": id, "channel": ch}
	if since != nil {
		cmd["since"] = since
	}
	b, _ := json.Marshal(cmd)
	c.send(string(b))
	f := c.nextNonPing()
	if f.Type != "subscribed" || f.ID != id || f.Channel != ch {
		c.t.Fatalf("subscribe %s: got %+v", ch, f)
	}
	return f
}

// expectDisconnect reads until the connection closes and checks that the
// last frame was a disconnect frame with code, and the close code matches.
func (c *client) expectDisconnect(code int, reconnect bool) {
	c.t.Helper()
	var last *frame
	for {
		for _, f := range c.pending {
			last = &f
		}
		c.pending = nil
		fs, err := c.readMessage()
		if err == nil {
			c.pending = fs
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("read ended with %v, want close code %d", err, code)
		}
		if ce.Code != code {
			c.t.Errorf("close code %d (%q), want %d", ce.Code, ce.Text, code)
		}
		if last == nil || last.Type != "disconnect" || last.Code != code || last.Reconnect != reconnect || last.Reason != ce.Text {
			c.t.Errorf("last frame %+v, want disconnect %d reconnect %v with the close reason %q", last, code, reconnect, ce.Text)
		}
		return
	}
}

// publishN publishes the integers from..to to ch.
func publishN(t testing.TB, n *session.Node, ch string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := n.Publish(context.Background(), ch, json.RawMessage(fmt.Sprint(i)), ""); err != nil {
			t.Fatal(err)
		}
	}
}

// intData decodes an integer payload.
func intData(t testing.TB, f frame) int {
	t.Helper()
	var v int
	if err := json.Unmarshal(f.Data, &v); err != nil {
		t.Fatalf("data %s: %v", f.Data, err)
	}
	return v
}
