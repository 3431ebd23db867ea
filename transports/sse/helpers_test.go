package sse

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// envConfig configures a test server. Zero fields take test defaults;
// HTTP2 serves over TLS with HTTP/2, where streams cannot be hijacked. The
// SSE handlers take no Options.
type envConfig = wiretest.TransportEnv[struct{}]

// testEnv is a node on a memory broker with /connect/sse and
// /connect/publish on a loopback test server. Its cleanup's node shutdown
// also checks that every stream closes its session.
type testEnv struct {
	*wiretest.Env
}

func newEnv(t testing.TB, ec envConfig) *testEnv {
	t.Helper()
	we := ec.Start(t, func(tc transports.Config, _ struct{}) (map[string]http.Handler, error) {
		h, err := New(tc)
		if err != nil {
			return nil, err
		}
		ph, err := NewPublishHandler(tc)
		return map[string]http.Handler{"/connect/sse": h, "/connect/publish": ph}, err
	})
	return &testEnv{Env: we}
}

// frame is a decoded server frame.
type frame = wire.Frame

// event is one parsed SSE event, its data decoded as a frame.
type event = wiretest.SSEEvent

// stream is an open SSE response with the client's positions, from the
// frames read.
type stream struct {
	*wiretest.SSEStream
	cur session.Cursor
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
	ss, r := wiretest.DialSSE(t, e.Srv.Client(), e.Srv.URL+"/connect/sse?"+q.Encode(), header)
	if ss == nil {
		return nil, r.Status, r.Body
	}
	return &stream{SSEStream: ss}, r.Status, ""
}

// nextFrame skips the retry-only event and pings and returns the next frame.
// It checks every event id against the client's cursor: the hello's id is
// where the stream starts, and each subscribed or message event's id must be
// that cursor moved by the frame.
func (st *stream) nextFrame(t testing.TB) event {
	t.Helper()
	for {
		ev := st.Next(t)
		if ev.Data == "" || ev.Frame.Type == "ping" {
			if ev.HasID {
				t.Fatalf("event %q has an id", ev.Data)
			}
			continue
		}
		f := ev.Frame
		switch f.Type {
		case "hello":
			if !ev.HasID {
				t.Fatal("hello without id")
			}
			c, err := session.DecodeCursor(ev.ID)
			if err != nil {
				t.Fatalf("hello id %q: %v", ev.ID, err)
			}
			st.cur = c
		case "subscribed", "message":
			if st.cur == nil {
				t.Fatalf("%s before hello", f.Type)
			}
			st.cur[f.Channel] = session.Position{Epoch: f.Epoch, Offset: f.Offset}
			if want := st.cur.Encode(); !ev.HasID || ev.ID != want {
				t.Fatalf("%s event id %q, want the cursor %q", f.Type, ev.ID, want)
			}
		default:
			if ev.HasID {
				t.Fatalf("%s event has an id", f.Type)
			}
		}
		return ev
	}
}

// start reads the hello frame and one subscribed frame per channel.
func (st *stream) start(t testing.TB, channels ...string) (hello event, subscribed map[string]frame) {
	t.Helper()
	hello = st.nextFrame(t)
	if hello.Frame.Type != "hello" {
		t.Fatalf("first frame %s, want hello", hello.Data)
	}
	subscribed = map[string]frame{}
	for range channels {
		ev := st.nextFrame(t)
		if ev.Frame.Type != "subscribed" {
			t.Fatalf("frame %s, want subscribed", ev.Data)
		}
		subscribed[ev.Frame.Channel] = ev.Frame
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
		if ev.Frame.Type != "message" {
			t.Fatalf("frame %s, want a message", ev.Data)
		}
		fs = append(fs, ev.Frame)
		ids = append(ids, ev.ID)
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
