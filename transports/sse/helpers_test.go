package sse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

var debugLog = flag.Bool("sse.debug", false, "write the transport's debug log to stderr")

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
	// connState, if set, sees every server-side connection (to shrink its
	// socket buffers, for example).
	connState func(net.Conn, http.ConnState)
	// broker, if set, wraps the memory broker (to reach its handler).
	broker func(*session.MemoryBroker) session.Broker
	// http2 serves over TLS with HTTP/2, where streams cannot be hijacked.
	http2 bool
	// opts are the handler's options.
	opts Options
}

// testEnv is a node on a memory broker with /connect/sse and
// /connect/publish on a loopback test server.
type testEnv struct {
	node    *session.Node
	srv     *httptest.Server
	metrics *recorder
}

func newEnv(t testing.TB, ec envConfig) *testEnv {
	t.Helper()
	b := session.NewMemoryBroker(session.MemoryBrokerConfig{})
	ec.node.Broker = b
	if ec.broker != nil {
		ec.node.Broker = ec.broker(b)
	}
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
	h, err := New(tc, ec.opts)
	if err != nil {
		t.Fatal(err)
	}
	ph, err := NewPublishHandler(tc)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/connect/sse", h)
	mux.Handle("/connect/publish", ph)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = ec.connState
	if ec.server != nil {
		ec.server(srv.Config)
	}
	if ec.http2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		// Shutdown also checks that every stream closes its session.
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
		srv.CloseClientConnections()
		srv.Close()
		b.Close()
	})
	return &testEnv{node: n, srv: srv, metrics: rec}
}

// recorder is a session.Metrics that remembers how sessions closed.
type recorder struct {
	session.NopMetrics
	mu     sync.Mutex
	closed map[string][]int // transport → close codes, in order
	slow   int
}

func (r *recorder) SlowClient(string) {
	r.mu.Lock()
	r.slow++
	r.mu.Unlock()
}

func (r *recorder) slowClients() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.slow
}

func (r *recorder) closedCodes(transport string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.closed[transport]...)
}

func (r *recorder) SessionClosed(transport string, code int) {
	r.mu.Lock()
	r.closed[transport] = append(r.closed[transport], code)
	r.mu.Unlock()
}

func (r *recorder) closeCodes(transport string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.closed[transport]...)
}

func testLogger() *slog.Logger {
	if *debugLog {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// publish publishes the integers from..to to ch.
func (e *testEnv) publish(t testing.TB, ch string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := e.node.Publish(context.Background(), ch, json.RawMessage(strconv.Itoa(i)), ""); err != nil {
			t.Fatal(err)
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
	Ping      int             `json:"ping"`
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset"`
	Epoch     string          `json:"epoch"`
	Data      json.RawMessage `json:"data"`
	Recovered *bool           `json:"recovered"`
	Code      int             `json:"code"`
	Reason    string          `json:"reason"`
	Reconnect bool            `json:"reconnect"`
}

// number returns a message's integer payload.
func (f frame) number(t testing.TB) int {
	t.Helper()
	n, err := strconv.Atoi(string(f.Data))
	if err != nil {
		t.Fatalf("message data %s is not a number", f.Data)
	}
	return n
}

// event is one parsed SSE event.
type event struct {
	id    string
	hasID bool
	data  string
	retry string
	frame frame // decoded data, when there is any
}

// stream is an open SSE response read by a goroutine.
type stream struct {
	resp   *http.Response
	cancel context.CancelFunc
	events chan event
	errc   chan error
	cur    session.Cursor // the client's positions, from the frames read
}

// dial opens /connect/sse with q and header; it fails the test unless the
// answer is 200.
func (e *testEnv) dial(t testing.TB, q url.Values, header http.Header) *stream {
	t.Helper()
	st, status, body := e.open(t, q, header)
	if status != http.StatusOK {
		t.Fatalf("GET /connect/sse?%s: %d %s", q.Encode(), status, body)
	}
	return st
}

// open opens /connect/sse; for a status other than 200 it returns the
// status and body and no stream.
func (e *testEnv) open(t testing.TB, q url.Values, header http.Header) (*stream, int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/connect/sse?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, string(b)
	}
	st := &stream{resp: resp, cancel: cancel, events: make(chan event, 10000), errc: make(chan error, 1)}
	go st.read()
	t.Cleanup(st.close)
	return st, resp.StatusCode, ""
}

func (st *stream) close() {
	st.cancel()
	st.resp.Body.Close()
}

// read parses events the way a browser does: fields accumulate until a
// blank line dispatches them; an unfinished event at the end is dropped.
func (st *stream) read() {
	defer close(st.events)
	r := bufio.NewReader(st.resp.Body)
	var ev event
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			st.errc <- err
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if data != nil || ev.hasID || ev.retry != "" {
				ev.data = strings.Join(data, "\n")
				if ev.data != "" {
					if err := json.Unmarshal([]byte(ev.data), &ev.frame); err != nil {
						st.errc <- fmt.Errorf("event data %q: %w", ev.data, err)
						return
					}
				}
				st.events <- ev
			}
			ev, data = event{}, nil
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "data":
			data = append(data, value)
		case "id":
			ev.id, ev.hasID = value, true
		case "retry":
			ev.retry = value
		}
	}
}

// next returns the next event, failing the test when the stream ends or
// nothing comes within waitLimit.
func (st *stream) next(t testing.TB) event {
	t.Helper()
	select {
	case ev, ok := <-st.events:
		if !ok {
			t.Fatalf("stream ended: %v", <-st.errc)
		}
		return ev
	case <-time.After(waitLimit):
		t.Fatal("no event in time")
	}
	panic("unreachable")
}

// nextFrame skips the retry-only event and pings and returns the next frame.
// It checks every event id against the client's cursor: the hello's id is
// where the stream starts, and each subscribed or message event's id must be
// that cursor moved by the frame.
func (st *stream) nextFrame(t testing.TB) event {
	t.Helper()
	for {
		ev := st.next(t)
		if ev.data == "" || ev.frame.Type == "ping" {
			if ev.hasID {
				t.Fatalf("event %q has an id", ev.data)
			}
			continue
		}
		f := ev.frame
		switch f.Type {
		case "hello":
			if !ev.hasID {
				t.Fatal("hello without id")
			}
			c, err := session.DecodeCursor(ev.id)
			if err != nil {
				t.Fatalf("hello id %q: %v", ev.id, err)
			}
			st.cur = c
		case "subscribed", "message":
			if st.cur == nil {
				t.Fatalf("%s before hello", f.Type)
			}
			st.cur[f.Channel] = session.Position{Epoch: f.Epoch, Offset: f.Offset}
			if want := st.cur.Encode(); !ev.hasID || ev.id != want {
				t.Fatalf("%s event id %q, want the cursor %q", f.Type, ev.id, want)
			}
		default:
			if ev.hasID {
				t.Fatalf("%s event has an id", f.Type)
			}
		}
		return ev
	}
}

// end waits for the stream to end and returns the events left before it.
func (st *stream) end(t testing.TB) []event {
	t.Helper()
	var out []event
	timeout := time.After(waitLimit)
	for {
		select {
		case ev, ok := <-st.events:
			if !ok {
				if err := <-st.errc; !errors.Is(err, io.EOF) {
					t.Fatalf("stream ended with %v, want a clean end", err)
				}
				return out
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatal("stream did not end")
		}
	}
}

// start reads the hello frame and one subscribed frame per channel.
func (st *stream) start(t testing.TB, channels ...string) (hello event, subscribed map[string]frame) {
	t.Helper()
	hello = st.nextFrame(t)
	if hello.frame.Type != "hello" {
		t.Fatalf("first frame %s, want hello", hello.data)
	}
	subscribed = map[string]frame{}
	for range channels {
		ev := st.nextFrame(t)
		if ev.frame.Type != "subscribed" {
			t.Fatalf("frame %s, want subscribed", ev.data)
		}
		subscribed[ev.frame.Channel] = ev.frame
	}
	for _, ch := range channels {
		if _, ok := subscribed[ch]; !ok {
			t.Fatalf("no subscribed frame for %s", ch)
		}
	}
	return hello, subscribed
}

// messages reads n message frames and returns them with their event ids.
func (st *stream) messages(t testing.TB, n int) ([]frame, []string) {
	t.Helper()
	var fs []frame
	var ids []string
	for len(fs) < n {
		ev := st.nextFrame(t)
		if ev.frame.Type != "message" {
			t.Fatalf("frame %s, want a message", ev.data)
		}
		fs = append(fs, ev.frame)
		ids = append(ids, ev.id)
	}
	return fs, ids
}

// numbers returns the integer payloads of messages in ch.
func numbers(t testing.TB, fs []frame, ch string) []int {
	t.Helper()
	var out []int
	for _, f := range fs {
		if f.Channel == ch {
			out = append(out, f.number(t))
		}
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

// errorBody decodes a JSON error answer.
func errorBody(t testing.TB, body string) session.Error {
	t.Helper()
	var v struct{ Error session.Error }
	if err := json.NewDecoder(bytes.NewReader([]byte(body))).Decode(&v); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return v.Error
}
