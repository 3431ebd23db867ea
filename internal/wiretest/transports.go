package wiretest

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// Number returns a message frame's integer payload, failing the test on a
// payload that is not one.
func Number(tb testing.TB, f wire.Frame) int {
	tb.Helper()
	n, err := f.Number()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// RawConn is a TCP connection to a test server on which the test speaks
// HTTP/1.1 by hand, for what a client library will not do: pipelined
// requests, a body that must not be taken for a request, an HTTP/1.0
// stream, a WebSocket handshake or frame cut anywhere, thousands of idle
// clients that hold no goroutine.
type RawConn struct {
	net.Conn
	// br is made on the first read, so that a held connection that is
	// never read costs the test process no buffer.
	br *bufio.Reader
}

// DialRaw connects to addr ("127.0.0.1:port"). Every read and write on
// the connection must end within WaitLimit; the caller closes it.
func DialRaw(addr string) (*RawConn, error) {
	c, err := net.DialTimeout("tcp", addr, WaitLimit)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(WaitLimit))
	return &RawConn{Conn: c}, nil
}

// Reader is the buffered reader of everything the server sends.
func (c *RawConn) Reader() *bufio.Reader {
	if c.br == nil {
		c.br = bufio.NewReader(c.Conn)
	}
	return c.br
}

// Answer reads one HTTP answer and its whole body. The answer is nil when
// its header could not be read.
func (c *RawConn) Answer() (*http.Response, string, error) {
	resp, err := http.ReadResponse(c.Reader(), nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// UpgradeWS sends a WebSocket handshake for path and reads the server's
// 101 answer. What the server sends next is read by ReadFrame.
func (c *RawConn) UpgradeWS(path string) error {
	_, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", path, c.RemoteAddr())
	if err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.Reader(), nil)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("handshake answered %s", resp.Status)
	}
	return nil
}

// ReadFrame reads one WebSocket frame from the server: its opcode and
// payload.
func (c *RawConn) ReadFrame() (op byte, payload []byte, err error) {
	return wire.ReadServerFrame(c.Reader())
}

// debugLog is one flag for every transport package's tests:
// go test ./transports/sse -args -wiretest.debug
var debugLog = flag.Bool("wiretest.debug", false, "write the node's and the transport's debug logs to stderr")

// TransportEnv is what a transport package's own tests put under test: a
// node, the transport's Config and the handlers built from it. The node
// and the transport log to stderr with -wiretest.debug.
type TransportEnv struct {
	// Node configures the node, as EnvConfig.Node.
	Node session.Config
	// Transport is the transport's Config; TransportConfig fills what it
	// leaves unset before Handlers sees it.
	Transport transports.Config
	// Broker, Server and HTTP2 are as in EnvConfig.
	Broker func(*session.MemoryBroker) session.Broker
	Server func(*httptest.Server)
	HTTP2  bool
	// Handlers builds the handlers under test, by path.
	Handlers func(tc transports.Config, srv *httptest.Server) (map[string]http.Handler, error)
}

// Start starts the Env.
func (te TransportEnv) Start(tb testing.TB) *Env {
	tb.Helper()
	if te.Node.Logger == nil {
		te.Node.Logger = Logger(*debugLog)
	}
	return NewEnv(tb, EnvConfig{
		Node:   te.Node,
		Broker: te.Broker,
		Server: te.Server,
		HTTP2:  te.HTTP2,
		Handlers: func(n *session.Node, srv *httptest.Server) (map[string]http.Handler, error) {
			return te.Handlers(TransportConfig(te.Transport, n, *debugLog), srv)
		},
	})
}

// NewNode returns a node configured by c on a memory broker, for a test
// that needs no server. The test's end shuts the node down, failing the
// test if a session does not close, and closes the broker.
func NewNode(tb testing.TB, c session.Config) *session.Node {
	tb.Helper()
	b := session.NewMemoryBroker(session.MemoryBrokerConfig{})
	c.Broker = b
	if c.Logger == nil {
		c.Logger = Logger(*debugLog)
	}
	n, err := session.New(c)
	if err != nil {
		b.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			tb.Errorf("node shutdown: %v", err)
		}
		b.Close()
	})
	return n
}

// CheckHeaders reports each header of want that h does not have with
// exactly that value.
func CheckHeaders(tb testing.TB, h http.Header, want map[string]string) {
	tb.Helper()
	for k, v := range want {
		if got := h.Get(k); got != v {
			tb.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

// Request sends one request to u, with body (none when empty) and header,
// through client (nil: http.DefaultClient), and reads the whole answer
// within WaitLimit. Not getting an answer fails the test.
func Request(tb testing.TB, client *http.Client, method, u, body string, header http.Header) Reply {
	tb.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading the answer: %v", method, u, err)
	}
	return Reply{resp.StatusCode, resp.Header, string(b)}
}

// SmallSendBuffers is a TransportEnv.Server hook that gives every
// connection the server accepts a send buffer of size bytes, so that
// writes to a client that stops reading stall soon.
func SmallSendBuffers(size int) func(*httptest.Server) {
	return func(srv *httptest.Server) {
		srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
			if tc, ok := c.(*net.TCPConn); ok && s == http.StateNew {
				_ = tc.SetWriteBuffer(size)
			}
		}
	}
}

// ServerTimeouts is a TransportEnv.Server hook that sets the server's read
// and write timeouts to d: a hardened server's timeouts, which a held poll
// or a stream outlives.
func ServerTimeouts(d time.Duration) func(*httptest.Server) {
	return func(srv *httptest.Server) {
		srv.Config.ReadTimeout = d
		srv.Config.WriteTimeout = d
	}
}
