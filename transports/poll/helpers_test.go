package poll

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

var debugLog = flag.Bool("poll.debug", false, "write the transport's debug log to stderr")

// allowedOrigin is the only cross-origin page the test servers accept.
const allowedOrigin = "http://app.example"

// waitLimit bounds every wait in these tests; reaching it is a failure, not
// a measurement.
const waitLimit = 10 * time.Second

// envConfig configures a test server. Zero fields take test defaults.
type envConfig struct {
	node      session.Config
	transport transports.Config
	// server, if set, adjusts the http.Server (timeouts) before it starts.
	server func(*http.Server)
	opts   Options
	// reuse serves through a netconn.ReuseListener, so that held polls
	// hand their connections back (as the real server does).
	reuse bool
}

// testEnv is a node on a memory broker with /connect/poll on a loopback
// test server.
type testEnv struct {
	node    *session.Node
	srv     *httptest.Server
	client  *http.Client
	metrics *recorder
}

func newEnv(t testing.TB, ec envConfig) *testEnv {
	t.Helper()
	b := session.NewMemoryBroker(session.MemoryBrokerConfig{})
	ec.node.Broker = b
	if ec.node.Logger == nil {
		ec.node.Logger = testLogger()
	}
	rec := &recorder{closed: map[string][]int{}}
	ec.node.Metrics = rec
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
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	if ec.reuse {
		rl := netconn.NewReuseListener(srv.Listener, time.Minute)
		srv.Listener, tc.Reuse = rl, rl
	}
	h, err := New(tc, ec.opts)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/connect/poll", h)
	if ec.server != nil {
		ec.server(srv.Config)
	}
	srv.Start()
	t.Cleanup(func() {
		// Shutdown also checks that every held poll closes its session.
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
		srv.CloseClientConnections()
		srv.Close()
		b.Close()
	})
	client := srv.Client()
	client.Timeout = waitLimit
	return &testEnv{node: n, srv: srv, client: client, metrics: rec}
}

func testLogger() *slog.Logger {
	if *debugLog {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// recorder is a session.Metrics that remembers how sessions opened and closed.
type recorder struct {
	session.NopMetrics
	mu     sync.Mutex
	opened []string
	closed map[string][]int // transport → close codes, in order
}

func (r *recorder) SessionOpened(transport string) {
	r.mu.Lock()
	r.opened = append(r.opened, transport)
	r.mu.Unlock()
}

func (r *recorder) SessionClosed(transport string, code int) {
	r.mu.Lock()
	r.closed[transport] = append(r.closed[transport], code)
	r.mu.Unlock()
}

// publish publishes the integers from..to to ch.
func (e *testEnv) publish(t testing.TB, ch string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := e.node.Publish(context.Background(), ch, json.RawMessage(strconv.Itoa(i)), ""); err != nil {
			t.Error(err)
			return
		}
	}
}

// waitSessions waits until the node has n sessions.
func (e *testEnv) waitSessions(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for e.node.SessionCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("node has %d sessions, want %d", e.node.SessionCount(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// frame is a decoded server frame, with every field a test looks at.
type frame struct {
	Type      string          `json:"type"`
	Session   string          `json:"session"`
	Transport string          `json:"transport"`
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset"`
	Epoch     string          `json:"epoch"`
	Data      json.RawMessage `json:"data"`
	Recovered *bool           `json:"recovered"`
	Code      int             `json:"code"`
	Reason    string          `json:"reason"`
	Reconnect bool            `json:"reconnect"`
}

// pollAnswer is a decoded poll answer or error.
type pollAnswer struct {
	Messages []frame       `json:"messages"`
	Cursor   *string       `json:"cursor"`
	Error    session.Error `json:"error"`
}

// reply is a raw HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

// do sends a poll. A POST sends q as a form body.
func (e *testEnv) do(ctx context.Context, method string, q url.Values, header map[string]string) (reply, error) {
	u, body := e.srv.URL+"/connect/poll", io.Reader(nil)
	if method == http.MethodPost {
		body = strings.NewReader(q.Encode())
	} else {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return reply{}, err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}, err
}

// poll sends a GET poll and decodes its 200 JSON answer.
func (e *testEnv) poll(t testing.TB, q url.Values) pollAnswer {
	t.Helper()
	r, err := e.do(context.Background(), http.MethodGet, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAnswer(t, r)
}

// pollAsync sends a GET poll from another goroutine; the test decodes the
// reply (t.Fatal must not run off the test goroutine).
func (e *testEnv) pollAsync(q url.Values) <-chan reply {
	out := make(chan reply, 1)
	go func() {
		r, err := e.do(context.Background(), http.MethodGet, q, nil)
		if err != nil {
			r = reply{status: -1, body: err.Error()}
		}
		out <- r
	}()
	return out
}

func decodeAnswer(t testing.TB, r reply) pollAnswer {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("poll: %d %s", r.status, r.body)
	}
	var a pollAnswer
	if err := json.Unmarshal([]byte(r.body), &a); err != nil {
		t.Fatalf("answer %q: %v", r.body, err)
	}
	if a.Messages == nil || a.Cursor == nil {
		t.Fatalf("answer %s lacks messages or cursor", r.body)
	}
	return a
}

// decodeJSONP checks the /**/cb(...); wrapping and decodes the argument.
func decodeJSONP(t testing.TB, r reply, cb string) pollAnswer {
	t.Helper()
	prefix, suffix := "/**/"+cb+"(", ");"
	if r.status != http.StatusOK || !strings.HasPrefix(r.body, prefix) || !strings.HasSuffix(r.body, suffix) {
		t.Fatalf("JSONP answer %d %q", r.status, r.body)
	}
	var a pollAnswer
	if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(r.body, prefix), suffix)), &a); err != nil {
		t.Fatalf("JSONP argument in %q: %v", r.body, err)
	}
	return a
}

// cursorOf decodes an answer's cursor.
func cursorOf(t testing.TB, a pollAnswer) session.Cursor {
	t.Helper()
	c, err := session.DecodeCursor(*a.Cursor)
	if err != nil {
		t.Fatalf("cursor %q: %v", *a.Cursor, err)
	}
	return c
}

// numbers returns the integer payloads of the messages in ch.
func numbers(t testing.TB, fs []frame, ch string) []int {
	t.Helper()
	var out []int
	for _, f := range fs {
		if f.Type != "message" || f.Channel != ch {
			continue
		}
		n, err := strconv.Atoi(string(f.Data))
		if err != nil {
			t.Fatalf("message data %s", f.Data)
		}
		out = append(out, n)
	}
	return out
}

func types(fs []frame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Type
	}
	return out
}

func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	return q
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
