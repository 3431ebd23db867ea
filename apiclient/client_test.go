package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/apiclient"
	"github.com/waterspout/waterspout/internal/leaktest"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/server"
	"github.com/waterspout/waterspout/session/brokertest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

const testKey = "apiclient-test-key-0123456789"

// newServer serves a real server (memory broker, API key testKey) on
// loopback until the test ends.
func newServer(t *testing.T, mutate func(*server.Config)) string {
	t.Helper()
	cfg := server.Config{Addr: "127.0.0.1:0", APIKeys: []string{testKey}, Logger: slog.New(slog.DiscardHandler)}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return wiretest.Serve(t, s).URL
}

func newClient(t *testing.T, url string, rt http.RoundTripper) *apiclient.Client {
	t.Helper()
	cfg := apiclient.Config{URL: url, APIKey: testKey, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	if rt != nil {
		cfg.HTTPClient = &http.Client{Transport: rt}
	}
	c, err := apiclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// loseAnswers forwards every request to the server, and for the first
// `lose` of them throws the server's answer away after the server handled
// the request, failing as a connection reset on the way back would.
type loseAnswers struct {
	lose     int32
	requests atomic.Int32
	keys     []string // idempotency key of each request, in order
}

func (l *loseAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	n := l.requests.Add(1)
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Key string `json:"key"`
		}
		_ = json.Unmarshal(b, &body)
		l.keys = append(l.keys, body.Key)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || n > l.lose {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, errors.New("read tcp: connection reset by peer (the test lost the answer)")
}

// wsSubscriber subscribes to channel over the WebSocket transport and
// returns a function that reads the next message frame.
func wsSubscriber(t *testing.T, base, channel string) func() map[string]any {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/connect/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var pending []map[string]any
	next := func() map[string]any {
		t.Helper()
		for len(pending) == 0 {
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, msg, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			for _, line := range strings.Split(string(msg), "\n") {
				var f map[string]any
				if err := json.Unmarshal([]byte(line), &f); err != nil {
					t.Fatalf("frame %q: %v", line, err)
				}
				if f["type"] != "ping" {
					pending = append(pending, f)
				}
			}
		}
		f := pending[0]
		pending = pending[1:]
		return f
	}
	if f := next(); f["type"] != "hello" {
		t.Fatalf("first frame %v", f)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","id":1,"channel":"`+channel+`"}`)); err != nil {
		t.Fatal(err)
	}
	if f := next(); f["type"] != "subscribed" {
		t.Fatalf("want subscribed, got %v", f)
	}
	return next
}

// TestPublishAnswerLostIsRetriedAndDeliveredOnce is the reason the package
// exists: the server publishes, the answer is lost, the client retries with
// the same (generated) key, and the subscriber sees the message once.
func TestPublishAnswerLostIsRetriedAndDeliveredOnce(t *testing.T) {
	url := newServer(t, nil)
	next := wsSubscriber(t, url, "orders")
	lose := &loseAnswers{lose: 1}
	c := newClient(t, url, lose)
	ctx := context.Background()

	res, err := c.Publish(ctx, apiclient.PublishRequest{Channel: "orders", Data: map[string]int{"n": 1}})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if got := lose.requests.Load(); got != 2 {
		t.Fatalf("%d requests, want 2 (the lost one and its retry)", got)
	}
	if lose.keys[0] == "" || lose.keys[0] != lose.keys[1] || res.Key != lose.keys[0] {
		t.Fatalf("keys sent %q, result key %q: want one generated key reused", lose.keys, res.Key)
	}
	if res.Offset != 1 || !res.Duplicate || res.Channel != "orders" || res.Epoch == "" {
		t.Fatalf("result %+v, want offset 1 answered as a duplicate", res)
	}
	// A marker behind it: the message must come once, then the marker.
	if _, err := c.Publish(ctx, apiclient.PublishRequest{Channel: "orders", Data: "marker"}); err != nil {
		t.Fatal(err)
	}
	if f := next(); f["type"] != "message" || f["offset"] != 1.0 {
		t.Fatalf("first delivery %v", f)
	}
	if f := next(); f["type"] != "message" || f["offset"] != 2.0 || f["data"] != "marker" {
		t.Fatalf("second delivery %v, want the marker (offset 2): the retry was delivered again", f)
	}
	h, err := c.History(ctx, apiclient.HistoryRequest{Channel: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Publications) != 2 {
		t.Fatalf("history holds %d publications, want 2", len(h.Publications))
	}
}

func TestBroadcastAnswerLostIsRetriedOnce(t *testing.T) {
	url := newServer(t, nil)
	lose := &loseAnswers{lose: 2}
	c := newClient(t, url, lose)
	ctx := context.Background()
	res, err := c.Broadcast(ctx, apiclient.BroadcastRequest{Channels: []string{"a", "b"}, Data: 1, Key: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	if lose.requests.Load() != 3 || res.Key != "mine" || len(res.Results) != 2 {
		t.Fatalf("%d requests, result %+v", lose.requests.Load(), res)
	}
	for _, r := range res.Results {
		if r.Err != nil || r.Offset != 1 {
			t.Errorf("channel result %+v", r)
		}
		h, err := c.History(ctx, apiclient.HistoryRequest{Channel: r.Channel})
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Publications) != 1 {
			t.Errorf("%s: %d publications after 3 attempts, want 1", r.Channel, len(h.Publications))
		}
	}
}

// TestBatch: a batch whose answers are lost is retried with the same body,
// generated keys included, so each publication is published once and in
// order; each result carries its key, and a retried publication reads as
// a duplicate of the original.
func TestBatch(t *testing.T) {
	url := newServer(t, nil)
	lose := &loseAnswers{lose: 1}
	c := newClient(t, url, lose)
	ctx := context.Background()
	next := wsSubscriber(t, url, "orders:7")
	pubs := []apiclient.PublishRequest{
		{Channel: "orders:7", Data: "placed"}, {Channel: "orders:8", Data: 1, Key: "mine"}, {Channel: "orders:7", Data: "cancelled"},
	}
	res, err := c.Batch(ctx, pubs)
	if err != nil {
		t.Fatal(err)
	}
	if lose.requests.Load() != 2 || len(res.Results) != 3 {
		t.Fatalf("%d requests, result %+v", lose.requests.Load(), res)
	}
	keys := map[string]bool{}
	for i, r := range res.Results {
		if r.Err != nil || r.Channel != pubs[i].Channel || r.Epoch == "" || r.Key == "" || !r.Duplicate {
			t.Errorf("result %d: %+v (the retry's answer: every publication a duplicate)", i, r)
		}
		keys[r.Key] = true
	}
	if len(keys) != 3 || res.Results[1].Key != "mine" || res.Results[0].Offset != 1 || res.Results[2].Offset != 2 {
		t.Errorf("keys and offsets %+v", res.Results)
	}
	for _, want := range []string{"placed", "cancelled"} {
		if f := next(); f["type"] != "message" || f["data"] != want {
			t.Fatalf("subscriber got %v, want %q", f, want)
		}
	}
	h, err := c.History(ctx, apiclient.HistoryRequest{Channel: "orders:7"})
	if err != nil || len(h.Publications) != 2 {
		t.Fatalf("history after a retried batch: %+v %v", h, err)
	}
}

// TestBatchWhileRedisHangs: while Redis hangs, a Batch call gets the
// server's answer, one result per publication (503 for those not
// published), rather than waiting for each publication's Redis timeout
// (20 channels: a minute) and failing with none. Called again once Redis
// is back, the same publications are each published once.
func TestBatchWhileRedisHangs(t *testing.T) {
	rs := brokertest.StartRedisServer(t)
	url := newServer(t, func(c *server.Config) { c.Broker, c.RedisURL = "redis", rs.URL() })
	// The server answers after about 5 s (10 s once in 12 runs, when the
	// publication in flight had to open a connection to Redis).
	c, err := apiclient.New(apiclient.Config{URL: url, APIKey: testKey, Retries: apiclient.NoRetries,
		AttemptTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pubs := make([]apiclient.PublishRequest, 20)
	for i := range pubs {
		pubs[i] = apiclient.PublishRequest{Channel: fmt.Sprintf("hang:%d", i), Data: i, Key: fmt.Sprintf("k%d", i)}
	}
	if _, err := c.Publish(ctx, apiclient.PublishRequest{Channel: "warm", Data: 1}); err != nil {
		t.Fatal(err)
	}
	rs.Pause()
	res, err := c.Batch(ctx, pubs)
	rs.Resume()
	if err != nil {
		t.Fatalf("Batch while Redis hangs: %v, want an answer with a result per publication", err)
	}
	for _, i := range []int{0, len(pubs) - 1} {
		if r := res.Results[i]; r.Err == nil || !errors.Is(r.Err, apiclient.ErrUnavailable) {
			t.Errorf("result %d while Redis hangs: %+v", i, r)
		}
	}
	for range 50 { // until the server's Redis client has reconnected
		if res, err = c.Batch(ctx, pubs); err == nil && res.Results[0].Err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Results {
		if r.Err != nil || r.Offset != 1 {
			t.Errorf("result %d once Redis is back: %+v", i, r)
		}
	}
}

// TestBatchErrors: a bad publication fails the call with ErrInvalid
// naming it, a publication the server refuses alone fails its result, and
// a batch of no or too many publications is refused before any request.
func TestBatchErrors(t *testing.T) {
	url := newServer(t, func(c *server.Config) { c.MaxServerChannels = 1 })
	c := newClient(t, url, nil)
	ctx := context.Background()
	_, err := c.Batch(ctx, []apiclient.PublishRequest{{Channel: "a", Data: 1}, {Channel: "bad channel", Data: 1}})
	var apiErr *apiclient.Error
	if !errors.Is(err, apiclient.ErrInvalid) || !errors.As(err, &apiErr) || !strings.HasPrefix(apiErr.Reason, "publications[1]: ") {
		t.Fatalf("a bad publication: %v", err)
	}
	res, err := c.Batch(ctx, []apiclient.PublishRequest{{Channel: "a", Data: 1}, {Channel: "b", Data: 1}, {Channel: "a", Data: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Results[1]; r.Err == nil || !errors.Is(r.Err, apiclient.ErrUnavailable) || r.Offset != 0 {
		t.Errorf("a channel over the server's limit: %+v", r)
	}
	if res.Results[0].Err != nil || res.Results[2].Err != nil || res.Results[2].Offset != 2 {
		t.Errorf("the others: %+v", res.Results)
	}
	for _, n := range []int{0, apiclient.MaxBatch + 1} {
		if _, err := c.Batch(ctx, make([]apiclient.PublishRequest, n)); err == nil || !strings.Contains(err.Error(), "1..1000") {
			t.Errorf("%d publications: %v", n, err)
		}
	}
}

// failFirst answers the first n requests with status itself, as a proxy in
// front of a restarting server would, and forwards the rest.
type failFirst struct {
	n, status int32
	requests  atomic.Int32
}

func (f *failFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.requests.Add(1) > f.n {
		return http.DefaultTransport.RoundTrip(r)
	}
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: int(f.status), Header: http.Header{}, Request: r,
		Body: io.NopCloser(strings.NewReader("<html>bad gateway</html>"))}, nil
}

func TestRetries5xx(t *testing.T) {
	url := newServer(t, nil)
	ctx := context.Background()

	ff := &failFirst{n: 2, status: http.StatusBadGateway}
	res, err := newClient(t, url, ff).Publish(ctx, apiclient.PublishRequest{Channel: "news", Data: "x"})
	if err != nil || res.Offset != 1 || res.Duplicate || ff.requests.Load() != 3 {
		t.Fatalf("after two 502s: %+v, %v, %d requests", res, err, ff.requests.Load())
	}

	ff = &failFirst{n: 100, status: http.StatusServiceUnavailable}
	_, err = newClient(t, url, ff).Publish(ctx, apiclient.PublishRequest{Channel: "news", Data: "x"})
	var apiErr *apiclient.Error
	if !errors.Is(err, apiclient.ErrUnavailable) || !errors.As(err, &apiErr) ||
		apiErr.Attempts != apiclient.DefaultRetries+1 || ff.requests.Load() != apiclient.DefaultRetries+1 {
		t.Fatalf("always 503: %v (%d requests)", err, ff.requests.Load())
	}
}

func TestTypedErrors(t *testing.T) {
	url := newServer(t, func(c *server.Config) {
		c.RateLimits.PublishesPerSecond, c.RateLimits.PublishBurst = 1, 1
		c.Limits.MaxMessageBytes = 1024
	})
	ctx := context.Background()
	c := newClient(t, url, nil)
	wrong, err := apiclient.New(apiclient.Config{URL: url, APIKey: "not-the-key-at-all"})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		call    func() error
		is      error
		status  int
		isNot   []error
		retryAt time.Duration
	}{
		{"wrong API key", func() error {
			_, err := wrong.Publish(ctx, apiclient.PublishRequest{Channel: "news", Data: 1})
			return err
		}, apiclient.ErrUnauthorized, 401, []error{apiclient.ErrInvalid, apiclient.ErrRateLimited}, 0},
		{"bad channel", func() error {
			_, err := c.History(ctx, apiclient.HistoryRequest{Channel: "no spaces allowed"})
			return err
		}, apiclient.ErrInvalid, 400, []error{apiclient.ErrUnauthorized}, 0},
		{"data too large", func() error {
			_, err := c.Publish(ctx, apiclient.PublishRequest{Channel: "news", Data: strings.Repeat("x", 2048)})
			return err
		}, apiclient.ErrInvalid, 413, nil, 0},
		{"rate limited", func() error {
			// The burst of 1 goes to the first publish, the second is over.
			if _, err := c.Publish(ctx, apiclient.PublishRequest{Channel: "news", Data: 1}); err != nil {
				return err
			}
			_, err := c.Publish(ctx, apiclient.PublishRequest{Channel: "news", Data: 2})
			return err
		}, apiclient.ErrRateLimited, 429, []error{apiclient.ErrUnavailable}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var apiErr *apiclient.Error
			if !errors.Is(err, tt.is) || !errors.As(err, &apiErr) {
				t.Fatalf("got %v, want %v", err, tt.is)
			}
			if apiErr.Status != tt.status || apiErr.Reason == "" || apiErr.Attempts != 1 || apiErr.RetryAfter != tt.retryAt {
				t.Errorf("error %+v: want status %d, a reason, one attempt, retry after %s", apiErr, tt.status, tt.retryAt)
			}
			for _, other := range tt.isNot {
				if errors.Is(err, other) {
					t.Errorf("%v also matches %v", err, other)
				}
			}
		})
	}
}

func TestHistory(t *testing.T) {
	url := newServer(t, nil)
	ctx := context.Background()
	c := newClient(t, url, nil)
	var last apiclient.Result
	for i := range 3 {
		res, err := c.Publish(ctx, apiclient.PublishRequest{Channel: "news", Data: json.RawMessage(`{"i":` + string(rune('0'+i)) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		last = res
	}
	h, err := c.History(ctx, apiclient.HistoryRequest{Channel: "news", Since: &apiclient.Position{Epoch: last.Epoch, Offset: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if h.Offset != 3 || h.Epoch != last.Epoch || h.Recovered == nil || !*h.Recovered || len(h.Publications) != 2 ||
		h.Publications[0].Offset != 2 || string(h.Publications[1].Data) != `{"i":2}` || h.Publications[1].Key == "" {
		t.Fatalf("history since 1: %+v", h)
	}
	h, err = c.History(ctx, apiclient.HistoryRequest{Channel: "news", Since: &apiclient.Position{Epoch: "other", Offset: 1}, Limit: 1})
	if err != nil || h.Recovered == nil || *h.Recovered {
		t.Fatalf("history from another epoch: %+v, %v", h, err)
	}
	h, err = c.History(ctx, apiclient.HistoryRequest{Channel: "news", OnlyPosition: true})
	if err != nil || h.Offset != 3 || len(h.Publications) != 0 {
		t.Fatalf("position only: %+v, %v", h, err)
	}
}

func TestContextEndsRetries(t *testing.T) {
	url := newServer(t, nil)
	ff := &failFirst{n: 1000, status: http.StatusServiceUnavailable}
	c, err := apiclient.New(apiclient.Config{URL: url, HTTPClient: &http.Client{Transport: ff},
		Retries: 1000, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ff.requests.Load() < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err = c.Publish(ctx, apiclient.PublishRequest{Channel: "news", Data: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []apiclient.Config{
		{}, {URL: "ftp://x"}, {URL: "http://"}, {URL: "http://x", Retries: -2},
		{URL: "http://x", MinBackoff: -1}, {URL: "http://x", APIKey: "a\nb"},
	} {
		if _, err := apiclient.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	if _, err := apiclient.New(apiclient.Config{URL: "https://push.example.com/", Retries: apiclient.NoRetries}); err != nil {
		t.Error(err)
	}
}
