package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = wiretest.LogBuffer

type testServer struct {
	*Server
	URL  string
	logs *syncBuffer
}

// newTestServer builds a server from the defaults changed by mutate and
// serves its handler on a loopback httptest server; both end with the test.
func newTestServer(t *testing.T, mutate func(*Config)) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	cfg := Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testServer{Server: s, URL: wiretest.Serve(t, s).URL, logs: logs}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// errorBody is the JSON error body of every refusal.
type errorBody struct {
	Error session.Error `json:"error"`
}

// apiErr decodes the JSON error body.
func (a answer) apiErr(t *testing.T) session.Error {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal(a.body, &eb); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	if eb.Error.Code != a.status {
		t.Errorf("error code %d, status %d", eb.Error.Code, a.status)
	}
	return eb.Error
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
}

// do sends a request; headers are name, value pairs.
func do(t *testing.T, method, url, body string, headers ...string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header(headers...)
	if h := req.Header.Get("Host"); h != "" { // net/http sends req.Host, not the header
		req.Host = h
		req.Header.Del("Host")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// metricValue reads one series of base's /metrics, named as /metrics
// writes it (waterspout_limited_total{limit="x"}); ok is false when it is
// not there.
func metricValue(t *testing.T, base, series string) (v float64, ok bool) {
	t.Helper()
	a := do(t, http.MethodGet, base+"/metrics", "")
	for line := range strings.SplitSeq(string(a.body), "\n") {
		if text, found := strings.CutPrefix(line, series+" "); found {
			v, err := strconv.ParseFloat(text, 64)
			if err != nil {
				t.Fatalf("/metrics line %q: %v", line, err)
			}
			return v, true
		}
	}
	return 0, false
}

const jsonType = "application/json"
const formType = "application/x-www-form-urlencoded"

func postJSON(t *testing.T, url, body string, headers ...string) answer {
	t.Helper()
	return do(t, http.MethodPost, url, body, append([]string{"Content-Type", jsonType}, headers...)...)
}

// subscriber is a session on the server's node subscribed to channels, as
// a transport would hold it.
func subscriber(t *testing.T, s *Server, channels ...string) *session.Session {
	t.Helper()
	sess, err := s.node.NewSession("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close(session.Disconnect{}) })
	for _, ch := range channels {
		if err := sess.Subscribe(context.Background(), session.SubscribeRequest{Channel: ch}); err != nil {
			t.Fatalf("subscribe %s: %v", ch, err)
		}
	}
	return sess
}

// frame is a decoded server frame.
type frame = wire.Frame

// readUntil reads the session's frames until stop returns true for one of
// them, and returns all frames read. It fails after 5 s.
func readUntil(t *testing.T, sess *session.Session, stop func(frame) bool) []frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []frame
	var buf []session.Item
	for {
		items, err := sess.Next(ctx, time.Second, buf)
		if err != nil {
			t.Fatalf("Next after %d frames: %v", len(out), err)
		}
		for _, it := range items {
			var f frame
			if err := json.Unmarshal(it.Frame, &f); err != nil {
				t.Fatalf("frame %s: %v", it.Frame, err)
			}
			out = append(out, f)
			if stop(f) {
				return out
			}
		}
		buf = items
	}
}
