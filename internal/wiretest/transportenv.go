package wiretest

import (
	"context"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// debugLog is one flag for every transport package's tests:
// go test ./transports/sse -args -wiretest.debug
var debugLog = flag.Bool("wiretest.debug", false, "write the node's and the transport's debug logs to stderr")

// TransportEnv is what a transport package's own tests put under test: a
// node, the transport's Config and Options, and the server they run on.
// O is the transport's Options type (struct{} for a transport that has
// none). Zero fields take test defaults. The node and the transport log to
// stderr with -wiretest.debug.
type TransportEnv[O any] struct {
	// Node configures the node, as EnvConfig.Node.
	Node session.Config
	// Transport is the transport's Config; TransportConfig fills what it
	// leaves unset before the transport's constructor sees it.
	Transport transports.Config
	// Options are the transport's own options, as its constructor takes
	// them.
	Options O
	// Broker, Server and HTTP2 are as in EnvConfig: the server hooks
	// ServerTimeouts and SmallSendBuffers go in Server.
	Broker func(*session.MemoryBroker) session.Broker
	Server func(*httptest.Server)
	HTTP2  bool
	// Reuse serves through a netconn.ReuseListener, set as
	// Transport.Reuse, so that hijacked connections go back to the server
	// as they do in the real one.
	Reuse bool
}

// Mount builds a transport's handlers, by path, from its Config and
// Options.
type Mount[O any] func(tc transports.Config, opts O) (map[string]http.Handler, error)

// At is the Mount of a transport with one endpoint: the handler newHandler
// builds, at path.
func At[O any, H http.Handler](path string, newHandler func(transports.Config, O) (H, error)) Mount[O] {
	return func(tc transports.Config, opts O) (map[string]http.Handler, error) {
		h, err := newHandler(tc, opts)
		if err != nil {
			return nil, err
		}
		return map[string]http.Handler{path: h}, nil
	}
}

// Start starts the Env with the handlers mount builds.
func (te TransportEnv[O]) Start(tb testing.TB, mount Mount[O]) *Env {
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
			tc := TransportConfig(te.Transport, n, *debugLog)
			if te.Reuse {
				rl := netconn.NewReuseListener(srv.Listener, time.Minute)
				srv.Listener, tc.Reuse = rl, rl
			}
			return mount(tc, te.Options)
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
