package wiretest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"encoding/json"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// WaitLimit bounds every wait of a test; reaching it is a failure, not a
// measurement.
const WaitLimit = 10 * time.Second

// AllowedOrigin is the only cross-origin page CheckOrigin accepts.
const AllowedOrigin = "http://app.example"

// CheckOrigin accepts same-origin requests (no Origin) and AllowedOrigin.
func CheckOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o == "" || o == AllowedOrigin
}

// Logger writes debug logs to stderr when debug is set, and nothing else.
func Logger(debug bool) *slog.Logger {
	if debug {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// EnvConfig is what a test puts under test. Zero fields take defaults.
type EnvConfig struct {
	// Node configures the node; its Broker is set by NewEnv, its Metrics
	// default to the Env's Recorder and its Logger to a silent one.
	Node session.Config
	// Broker, if set, wraps the memory broker (to reach its handler).
	Broker func(*session.MemoryBroker) session.Broker
	// Server, if set, adjusts the unstarted server: its timeouts,
	// ConnState or listener.
	Server func(*httptest.Server)
	// Handlers builds the handlers under test, by path, on the node. It runs
	// after Server, so that a handler may wrap the server's listener.
	Handlers func(n *session.Node, srv *httptest.Server) (map[string]http.Handler, error)
	// HTTP2 serves over TLS with HTTP/2.
	HTTP2 bool
}

// Env is a node on a memory broker with the handlers under test on a
// loopback server. Its cleanup shuts the node down (failing the test if a
// session does not close) and closes the server and the broker.
type Env struct {
	Node    *session.Node
	Broker  *session.MemoryBroker
	Srv     *httptest.Server
	Metrics *Recorder
}

// NewEnv starts an Env.
func NewEnv(tb testing.TB, ec EnvConfig) *Env {
	tb.Helper()
	b := session.NewMemoryBroker(session.MemoryBrokerConfig{})
	ec.Node.Broker = b
	if ec.Broker != nil {
		ec.Node.Broker = ec.Broker(b)
	}
	if ec.Node.Logger == nil {
		ec.Node.Logger = Logger(false)
	}
	rec := &Recorder{}
	if ec.Node.Metrics == nil {
		ec.Node.Metrics = rec
	}
	n, err := session.New(ec.Node)
	if err != nil {
		b.Close()
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	if ec.Server != nil {
		ec.Server(srv)
	}
	e := &Env{Node: n, Broker: b, Srv: srv, Metrics: rec}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			tb.Errorf("node shutdown: %v", err)
		}
		if srv.URL != "" {
			srv.CloseClientConnections()
			srv.Close()
		}
		b.Close()
	})
	if ec.Handlers != nil {
		hs, err := ec.Handlers(n, srv)
		if err != nil {
			tb.Fatal(err)
		}
		for path, h := range hs {
			mux.Handle(path, h)
		}
	}
	if ec.HTTP2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	return e
}

// Publish publishes the integers from..to to ch, as JSON numbers.
func (e *Env) Publish(tb testing.TB, ch string, from, to int) {
	tb.Helper()
	PublishInts(tb, e.Node, ch, from, to)
}

// PublishInts publishes the integers from..to to ch on n, as JSON numbers.
func PublishInts(tb testing.TB, n *session.Node, ch string, from, to int) {
	tb.Helper()
	for i := from; i <= to; i++ {
		if _, err := n.Publish(context.Background(), ch, json.RawMessage(strconv.Itoa(i)), ""); err != nil {
			tb.Fatal(err)
		}
	}
}

// WaitSessions waits until the node has n sessions, failing the test after
// WaitLimit.
func (e *Env) WaitSessions(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(WaitLimit)
	for e.Node.SessionCount() != n {
		if time.Now().After(deadline) {
			tb.Fatalf("node has %d sessions, want %d", e.Node.SessionCount(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Eventually waits until cond holds, failing the test after WaitLimit.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(WaitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TransportConfig fills what a transport under test needs and the test
// left unset: the node, CheckOrigin and a logger (debug: to stderr).
func TransportConfig(tc transports.Config, n *session.Node, debug bool) transports.Config {
	tc.Node = n
	if tc.CheckOrigin == nil {
		tc.CheckOrigin = CheckOrigin
	}
	if tc.Logger == nil {
		tc.Logger = Logger(debug)
	}
	return tc
}
