package ws

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

// envConfig configures a test server. Zero fields take test defaults.
type envConfig = wiretest.TransportEnv[Options]

// testEnv is a node with a memory broker and the WebSocket handler on a
// loopback test server.
type testEnv struct {
	*wiretest.Env
	url string // ws://127.0.0.1:port/connect/ws
}

func newEnv(t testing.TB, ec envConfig) *testEnv {
	t.Helper()
	we := ec.Start(t, wiretest.At("/connect/ws", New))
	return &testEnv{Env: we, url: "ws" + strings.TrimPrefix(we.Srv.URL, "http") + "/connect/ws"}
}

// eventually waits until cond holds, failing the test after wiretest.WaitLimit.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	wiretest.Eventually(t, what, cond)
}

// frame is a decoded server frame.
type frame = wire.Frame

// client is a test WebSocket client built on gorilla's Dialer.
type client = wiretest.WSClient

type dialOptions struct {
	query  string
	header http.Header
	dialer *websocket.Dialer
}

func (e *testEnv) dialConn(o dialOptions) (*websocket.Conn, *http.Response, error) {
	u := e.url
	if o.query != "" {
		u += "?" + o.query
	}
	return wiretest.DialWS(u, o.header, o.dialer)
}

// dial connects and returns the client with its hello frame already read.
func (e *testEnv) dial(t testing.TB, o dialOptions) (*client, frame) {
	t.Helper()
	ws, resp, err := e.dialConn(o)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	c := wiretest.NewWSClient(t, ws)
	hello := c.Next()
	if hello.Type != "hello" {
		t.Fatalf("first frame %+v, want hello", hello)
	}
	return c, hello
}

// publishN publishes the integers from..to to ch.
func publishN(t testing.TB, n *session.Node, ch string, from, to int) {
	t.Helper()
	wiretest.PublishInts(t, n, ch, from, to)
}
