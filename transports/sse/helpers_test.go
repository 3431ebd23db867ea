package sse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

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
// /connect/publish on a loopback test server. Its cleanup's node shutdown
// also checks that every stream closes its session.
type testEnv struct {
	*wiretest.Env
}

func newEnv(t testing.TB, ec envConfig) *testEnv {
	t.Helper()
	we := wiretest.TransportEnv{
		Node:      ec.node,
		Transport: ec.transport,
		Broker:    ec.broker,
		HTTP2:     ec.http2,
		Server: func(srv *httptest.Server) {
			srv.Config.ConnState = ec.connState
			if ec.server != nil {
				ec.server(srv.Config)
			}
		},
		Handlers: func(tc transports.Config, _ *httptest.Server) (map[string]http.Handler, error) {
			h, err := New(tc, ec.opts)
			if err != nil {
				return nil, err
			}
			ph, err := NewPublishHandler(tc)
			return map[string]http.Handler{"/connect/sse": h, "/connect/publish": ph}, err
		},
	}.Start(t)
	return &testEnv{Env: we}
}

// frame is a decoded server frame.
type frame = wire.Frame

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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.Srv.URL+"/connect/sse?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.Srv.Client().Do(req)
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

// read decodes events (wiretest.SSEReader parses them as a browser does)
// and their frames.
func (st *stream) read() {
	defer close(st.events)
	r := wire.NewSSEReader(st.resp.Body)
	for {
		e, err := r.Next()
		if err != nil {
			st.errc <- err
			return
		}
		ev := event{id: e.ID, hasID: e.HasID, data: e.Data, retry: e.Retry}
		if ev.data != "" {
			if err := json.Unmarshal([]byte(ev.data), &ev.frame); err != nil {
				st.errc <- fmt.Errorf("event data %q: %w", ev.data, err)
				return
			}
		}
		st.events <- ev
	}
}

// next returns the next event, failing the test when the stream ends or
// nothing comes within wiretest.WaitLimit.
func (st *stream) next(t testing.TB) event {
	t.Helper()
	select {
	case ev, ok := <-st.events:
		if !ok {
			t.Fatalf("stream ended: %v", <-st.errc)
		}
		return ev
	case <-time.After(wiretest.WaitLimit):
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
	timeout := time.After(wiretest.WaitLimit)
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
	return wiretest.Numbers(t, fs, ch)
}

func query(kv ...string) url.Values { return wiretest.Query(kv...) }

// errorBody decodes a JSON error answer.
func errorBody(t testing.TB, body string) session.Error {
	t.Helper()
	var v struct{ Error session.Error }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return v.Error
}
