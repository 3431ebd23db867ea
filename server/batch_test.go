package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/testclock"
	"github.com/waterspout/waterspout/server/auth"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// batchBody writes a POST /api/batch body of the given publications.
func batchBody(t testing.TB, pubs ...map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"publications": pubs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pub is one publication of a batch body; key "" sends none.
func pub(ch string, data any, key string) map[string]any {
	m := map[string]any{"channel": ch, "data": data}
	if key != "" {
		m["key"] = key
	}
	return m
}

// postBatch sends body to /api/batch and decodes a 200 answer.
func postBatch(t *testing.T, base, body string, headers ...string) (answer, []batchResult) {
	t.Helper()
	a := postJSON(t, base+"/api/batch", body, headers...)
	if a.status != http.StatusOK {
		return a, nil
	}
	var got batchAnswer
	a.decode(t, &got)
	return a, got.Results
}

// topOffset is ch's current offset on s's node (0: nothing published).
func topOffset(t *testing.T, s *Server, ch string) uint64 {
	t.Helper()
	h, err := s.node.History(context.Background(), ch, nil, 0)
	if err != nil {
		t.Fatalf("history of %s: %v", ch, err)
	}
	return h.Top.Offset
}

// messagesOf reads sess's frames until it has n messages and returns their
// channel and data, in the order received.
func messagesOf(t *testing.T, sess *session.Session, n int) []string {
	t.Helper()
	var out []string
	readUntil(t, sess, func(f frame) bool {
		if f.Type == "message" {
			out = append(out, f.Channel+"="+string(f.Data))
		}
		return len(out) == n
	})
	return out
}

// TestBatchOrderAndResults: on both brokers, the publications of a batch
// are delivered in request order per channel (interleaved channels
// included), each result gives its channel's position in request order,
// and a key repeated inside the batch or in a later batch is a duplicate
// that is delivered once, with the original's position.
func TestBatchOrderAndResults(t *testing.T) {
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			var onBroker func(*Config)
			if name == "redis" {
				rs := brokertest.StartRedisServer(t)
				onBroker = func(c *Config) { c.Broker, c.RedisURL = "redis", rs.URL() }
			}
			ts := newTestServer(t, onBroker)
			sub := subscriber(t, ts.Server, "orders:1", "orders:2")
			readUntil(t, sub, func(f frame) bool { return f.Type == "subscribed" && f.Channel == "orders:2" })

			body := batchBody(t,
				pub("orders:1", 1, "a"), pub("orders:2", 1, ""), pub("orders:1", 2, "b"),
				pub("orders:1", 3, ""), pub("orders:2", 2, ""),
				pub("orders:1", "again", "a"), // the key of publications[0]: a duplicate
			)
			a, res := postBatch(t, ts.URL, body)
			if a.status != 200 || len(res) != 6 {
				t.Fatalf("batch: %d %s", a.status, a.body)
			}
			want := []struct {
				ch        string
				offset    uint64
				duplicate bool
			}{{"orders:1", 1, false}, {"orders:2", 1, false}, {"orders:1", 2, false}, {"orders:1", 3, false},
				{"orders:2", 2, false}, {"orders:1", 1, true}}
			for i, w := range want {
				r := res[i]
				if r.Channel != w.ch || r.Offset != w.offset || r.Duplicate != w.duplicate || r.Epoch == "" || r.Error != nil {
					t.Errorf("result %d: %+v, want %+v", i, r, w)
				}
			}
			if res[0].Epoch != res[5].Epoch {
				t.Errorf("a duplicate's epoch %q differs from the original's %q", res[5].Epoch, res[0].Epoch)
			}
			if strings.Count(string(a.body), `"duplicate"`) != 1 {
				t.Errorf("duplicate appears other than once: %s", a.body)
			}

			// Every publication once, in order per channel; the duplicate never.
			got := messagesOf(t, sub, 5)
			var one, two []string
			for _, m := range got {
				if strings.HasPrefix(m, "orders:1=") {
					one = append(one, m)
				} else {
					two = append(two, m)
				}
			}
			if strings.Join(one, " ") != "orders:1=1 orders:1=2 orders:1=3" || strings.Join(two, " ") != "orders:2=1 orders:2=2" {
				t.Errorf("delivered %v", got)
			}

			// The same keys in a later batch: duplicates, nothing new.
			a, res = postBatch(t, ts.URL, batchBody(t, pub("orders:1", 1, "a"), pub("orders:1", 2, "b")))
			if a.status != 200 || len(res) != 2 || !res[0].Duplicate || res[0].Offset != 1 || !res[1].Duplicate || res[1].Offset != 2 {
				t.Fatalf("resent batch: %d %s", a.status, a.body)
			}
			if top := topOffset(t, ts.Server, "orders:1"); top != 3 {
				t.Errorf("orders:1 at offset %d after the resend, want 3", top)
			}
		})
	}
}

// TestBatchRefusedWhole: one bad publication, even the last of 1,000,
// refuses the whole batch with 400 (413 for data over the limit) and a
// reason naming it, and nothing of the batch is published.
func TestBatchRefusedWhole(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Limits.MaxMessageBytes = 1000 })
	good := func(n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = pub(fmt.Sprintf("whole:%d", i%10), i, "")
		}
		return out
	}
	withLast := func(last string) string {
		items := good(999)
		b, _ := json.Marshal(map[string]any{"publications": items})
		return strings.TrimSuffix(string(b), "]}") + "," + last + "]}"
	}
	tests := []struct {
		name   string
		body   string
		status int
		reason string
	}{
		{"bad channel", withLast(`{"channel":"bad channel","data":1}`), 400, "publications[999]: "},
		{"no data", withLast(`{"channel":"a"}`), 400, "publications[999]: data is required"},
		{"no channel", withLast(`{"data":1}`), 400, "publications[999]: "},
		{"unknown field", withLast(`{"channel":"a","data":1,"kye":"x"}`), 400, `publications[999]: malformed publication: unknown field "kye"`},
		{"a name twice", withLast(`{"channel":"a","Channel":"admin","data":1}`), 400, `publications[999]: malformed publication: the name "Channel" appears twice`},
		{"channel not a string", withLast(`{"channel":5,"data":1}`), 400, "publications[999]: malformed publication: field channel is a JSON number"},
		{"not an object", withLast(`[1]`), 400, "publications[999]: a publication is a JSON object"},
		{"long key", withLast(`{"channel":"a","data":1,"key":"` + strings.Repeat("k", 257) + `"}`), 400, "publications[999]: key longer than 256"},
		{"invalid utf-8 in data", withLast("{\"channel\":\"a\",\"data\":\"\xff\"}"), 400, "publications[999]: field data is not valid UTF-8"},
		{"lone surrogate in key", withLast(`{"channel":"a","data":1,"key":"\ud800"}`), 400, "publications[999]: field key is not valid UTF-8"},
		{"data over the limit", withLast(`{"channel":"a","data":"` + strings.Repeat("x", 1000) + `"}`), 413, "publications[999]: data larger than 1000"},
		{"invalid json in the middle", `{"publications":[{"channel":"a","data":1},{"channel":"b","data":}]}`, 400, "malformed JSON body"},
		{"unknown field at the top", `{"publications":[{"channel":"a","data":1}],"key":"k"}`, 400, "unknown field"},
		{"publications twice", `{"publications":[{"channel":"a","data":1}],"Publications":[]}`, 400, "appears twice"},
		{"trailing data", `{"publications":[{"channel":"a","data":1}]} {}`, 400, "trailing data"},
		{"publications not an array", `{"publications":{"channel":"a","data":1}}`, 400, "field publications is a JSON object; it must be an array of objects"},
		{"empty", `{"publications":[]}`, 400, "publications is empty"},
		{"no publications", `{}`, 400, "publications is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postJSON(t, ts.URL+"/api/batch", tt.body)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %.300s", a.status, tt.status, a.body)
			}
			if e := a.apiErr(t); !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("reason %q, want it to contain %q", e.Reason, tt.reason)
			}
			for i := range 10 {
				if top := topOffset(t, ts.Server, fmt.Sprintf("whole:%d", i)); top != 0 {
					t.Fatalf("whole:%d at offset %d: part of a refused batch was published", i, top)
				}
			}
		})
	}
	t.Run("the good 999 alone are published", func(t *testing.T) {
		a, res := postBatch(t, ts.URL, batchBody(t, good(999)...))
		if a.status != 200 || len(res) != 999 {
			t.Fatalf("batch: %d %.300s", a.status, a.body)
		}
		if top := topOffset(t, ts.Server, "whole:0"); top != 100 {
			t.Errorf("whole:0 at offset %d, want 100", top)
		}
	})
}

// TestBatchCount: 1,000 publications are one batch; 1,001 are refused.
func TestBatchCount(t *testing.T) {
	ts := newTestServer(t, nil)
	items := make([]map[string]any, maxBatchPublications+1)
	for i := range items {
		items[i] = pub("count", i, fmt.Sprintf("k%d", i))
	}
	a := postJSON(t, ts.URL+"/api/batch", batchBody(t, items...))
	if a.status != 400 || !strings.Contains(a.apiErr(t).Reason, "more than 1000 publications") {
		t.Fatalf("1001 publications: %d %.300s", a.status, a.body)
	}
	if top := topOffset(t, ts.Server, "count"); top != 0 {
		t.Fatalf("count at offset %d after a refused batch", top)
	}
	a, res := postBatch(t, ts.URL, batchBody(t, items[:maxBatchPublications]...))
	if a.status != 200 || len(res) != maxBatchPublications {
		t.Fatalf("1000 publications: %d %.300s", a.status, a.body)
	}
	for i, r := range res {
		if r.Offset != uint64(i+1) || r.Error != nil {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	// A batch is one request of its route in the API metric; its
	// publications count as publications.
	for series, want := range map[string]float64{
		`waterspout_api_requests_total{code="200",route="/api/batch"}`: 1,
		`waterspout_api_requests_total{code="400",route="/api/batch"}`: 1,
		`waterspout_publications_total`:                                maxBatchPublications,
	} {
		if v, ok := metricValue(t, ts.URL, series); !ok || v != want {
			t.Errorf("%s = %v (found %v), want %v", series, v, ok, want)
		}
	}
}

// TestBatchBodyLimit: a body over limits.maxBatchBytes is answered 413 and
// publishes nothing, though each of its publications is within
// limits.maxMessageBytes; one under it passes.
func TestBatchBodyLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Limits.MaxMessageBytes, c.MaxBatchBytes = 1000, 4000 })
	items := make([]map[string]any, 8)
	for i := range items {
		items[i] = pub("sized", strings.Repeat("x", 500), "")
	}
	over := batchBody(t, items...)
	if len(over) <= 4000 {
		t.Fatalf("body of %d bytes is not over the limit", len(over))
	}
	a := postJSON(t, ts.URL+"/api/batch", over)
	if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.apiErr(t).Reason, "request body larger than 4000") {
		t.Fatalf("body over the limit: %d %s", a.status, a.body)
	}
	if top := topOffset(t, ts.Server, "sized"); top != 0 {
		t.Fatalf("sized at offset %d after a refused batch", top)
	}
	if a, res := postBatch(t, ts.URL, batchBody(t, items[:7]...)); a.status != 200 || len(res) != 7 {
		t.Fatalf("body under the limit: %d %s", a.status, a.body)
	}
}

// TestBatchConfig: limits.maxBatchBytes defaults to 1 MiB, grows with a
// larger maxMessageBytes, is read from the file, the flag and the
// environment, and may not be under maxMessageBytes or negative.
func TestBatchConfig(t *testing.T) {
	for _, tt := range []struct {
		name       string
		maxMessage int
		maxBatch   int
		want       int
		err        string
	}{
		{"default", 0, 0, 1 << 20, ""},
		{"grows with a larger message", 4 << 20, 0, 4<<20 + bodyOverhead, ""},
		{"set", 0, 100_000, 100_000, ""},
		{"a message and its envelope", 1000, 1000 + batchEnvelope, 1000 + batchEnvelope, ""},
		{"equal to a message", 1000, 1000, 0, "limits.maxBatchBytes 1000 is under limits.maxMessageBytes 1000 and 1024 bytes for the envelope"},
		{"under a message", 0, 1000, 0, "limits.maxBatchBytes 1000 is under limits.maxMessageBytes 65536"},
		{"negative", 0, -1, 0, "must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Limits: session.Limits{MaxMessageBytes: tt.maxMessage}, MaxBatchBytes: tt.maxBatch}
			err := c.Validate()
			switch {
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want %q", err, tt.err)
			case tt.err == "" && err != nil:
				t.Fatal(err)
			case tt.err == "" && c.maxBatchBytes() != tt.want:
				t.Errorf("maxBatchBytes %d, want %d", c.maxBatchBytes(), tt.want)
			}
		})
	}
	file := writeConfig(t, `{"limits":{"maxMessageBytes":2000,"maxBatchBytes":300000}}`)
	cfg, err := LoadConfig([]string{"--config", file}, func(string) string { return "" })
	if err != nil || cfg.MaxBatchBytes != 300000 || cfg.Limits.MaxMessageBytes != 2000 {
		t.Fatalf("from the file: %d %d %v", cfg.MaxBatchBytes, cfg.Limits.MaxMessageBytes, err)
	}
	env := map[string]string{"WATERSPOUT_MAX_BATCH_BYTES": "200000"}
	if cfg, err = LoadConfig(nil, func(k string) string { return env[k] }); err != nil || cfg.MaxBatchBytes != 200000 {
		t.Fatalf("from the environment: %d %v", cfg.MaxBatchBytes, err)
	}
	if cfg, err = LoadConfig([]string{"--max-batch-bytes", "123456"}, func(k string) string { return env[k] }); err != nil || cfg.MaxBatchBytes != 123456 {
		t.Fatalf("from the flag: %d %v", cfg.MaxBatchBytes, err)
	}
	if _, err = LoadConfig([]string{"--max-batch-bytes", "-5"}, func(string) string { return "" }); err == nil {
		t.Fatal("a negative flag accepted")
	}
	if _, err = LoadConfig([]string{"--config", writeConfig(t, `{"limits":{"maxbatchbytes":1}}`)}, func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), `did you mean "maxBatchBytes"`) {
		t.Fatalf("a key in the wrong case: %v", err)
	}
	cfg, err = LoadConfig([]string{"--config", writeConfig(t, `{"limits":{"maxBatchBytes":10}}`)}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "limits.maxBatchBytes 10 is under") {
		t.Fatalf("a file's batch limit under a message: %v", err)
	}
	// The file form round-trips, and clients are not told the batch limit.
	b, err := json.Marshal(Config{Limits: session.Limits{MaxMessageBytes: 7}, MaxBatchBytes: 9})
	if err != nil || !strings.Contains(string(b), `"limits":{"maxMessageBytes":7,"maxChannels":0,"maxQueueBytes":0,"maxBatchBytes":9}`) {
		t.Fatalf("file form: %s %v", b, err)
	}
	if b, _ := json.Marshal(session.Limits{}); strings.Contains(string(b), "Batch") {
		t.Errorf("the limits announced to clients hold the batch limit: %s", b)
	}
}

// TestBatchForm: a batch is JSON only.
func TestBatchForm(t *testing.T) {
	ts := newTestServer(t, nil)
	a := do(t, http.MethodPost, ts.URL+"/api/batch", "channel=a&data=1", "Content-Type", formType)
	if a.status != http.StatusUnsupportedMediaType || !strings.Contains(a.apiErr(t).Reason, "batch takes a JSON body") {
		t.Fatalf("form: %d %s", a.status, a.body)
	}
	if top := topOffset(t, ts.Server, "a"); top != 0 {
		t.Fatalf("a at offset %d", top)
	}
}

// TestBatchPublisherToken: a publisher token's channel rules apply per
// publication: a channel it may not publish to gets 403 in its result,
// and the others are published.
func TestBatchPublisherToken(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.APIKeys = []string{testAPIKey}
		c.Tokens.Keys = []TokenKey{{Secret: string(testSecret)}}
	})
	tok, err := auth.Mint(auth.MintConfig{Sub: "billing", Kind: auth.KindPublisher, Publish: []string{"orders:*"},
		TTL: time.Hour, Key: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	a, res := postBatch(t, ts.URL, batchBody(t, pub("orders:1", 1, ""), pub("news", 2, ""), pub("orders:2", 3, "")),
		"Authorization", "Bearer "+tok)
	if a.status != 200 || len(res) != 3 {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}
	if res[0].Error != nil || res[0].Offset != 1 || res[2].Error != nil || res[2].Offset != 1 {
		t.Errorf("allowed channels: %+v %+v", res[0], res[2])
	}
	if r := res[1]; r.Channel != "news" || r.Error == nil || r.Error.Code != 403 || r.Offset != 0 {
		t.Errorf("refused channel: %+v", r)
	}
	if top := topOffset(t, ts.Server, "news"); top != 0 {
		t.Errorf("news at offset %d: published beyond the token", top)
	}
}

// ratedBatchServer starts a server whose API key may publish 1 a second
// with a burst of 10, on a fake clock; batch(n) is a batch body of n
// publications to channel, and key the request's Authorization header.
func ratedBatchServer(t *testing.T, channel string) (ts *testServer, clock *testclock.Clock, key []string, batch func(n int) string) {
	t.Helper()
	ts = newTestServer(t, func(c *Config) {
		c.APIKeys = []string{testAPIKey}
		c.RateLimits.PublishesPerSecond, c.RateLimits.PublishBurst = 1, 10
	})
	batch = func(n int) string {
		items := make([]map[string]any, n)
		for i := range items {
			items[i] = pub(channel, i, "")
		}
		return batchBody(t, items...)
	}
	return ts, withClock(ts), []string{"Authorization", "Bearer " + testAPIKey}, batch
}

// TestBatchRateLimit: a batch spends one publication of the credential's
// rate per item, up front: a batch larger than what is left is refused
// whole with 429 and publishes nothing, one that fits is published. (A
// batch larger than the whole burst waits for a full bucket, as a
// broadcast does, and is charged in full: see
// TestBatchOverTheBurstIsCharged and auth.KeyedLimiter.AllowN.)
func TestBatchRateLimit(t *testing.T) {
	ts, clock, key, batch := ratedBatchServer(t, "rated")
	if a, res := postBatch(t, ts.URL, batch(4), key...); a.status != 200 || len(res) != 4 {
		t.Fatalf("4 of a burst of 10: %d %s", a.status, a.body)
	}
	// 6 are left: 7 are refused, not cut to 6.
	counter(t, ts, limitPublishes, 1, func() {
		a := postJSON(t, ts.URL+"/api/batch", batch(7), key...)
		if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
			t.Fatalf("7 with 6 left: %d %s", a.status, a.body)
		}
	})
	if top := topOffset(t, ts.Server, "rated"); top != 4 {
		t.Fatalf("rated at offset %d after a refused batch, want 4", top)
	}
	if a, res := postBatch(t, ts.URL, batch(6), key...); a.status != 200 || len(res) != 6 {
		t.Fatalf("6 with 6 left: %d %s", a.status, a.body)
	}
	if a := postJSON(t, ts.URL+"/api/batch", batch(1), key...); a.status != http.StatusTooManyRequests {
		t.Fatalf("1 with none left: %d %s", a.status, a.body)
	}
	clock.Advance(10 * time.Second)
	if a, res := postBatch(t, ts.URL, batch(15), key...); a.status != 200 || len(res) != 15 {
		t.Fatalf("15 with a full bucket of 10: %d %s", a.status, a.body)
	}
	if top := topOffset(t, ts.Server, "rated"); top != 25 {
		t.Fatalf("rated at offset %d, want 25", top)
	}
}

// TestBatchOverTheBurstIsCharged: a batch larger than the whole burst
// passes once the bucket is full, but is charged every publication it
// holds: the credential's next publications wait until the rate has paid
// for them, so batches cannot publish faster than the rate. (Charging only
// the burst let a batch of 1,000 at a burst of 10 publish 100 times the
// rate.)
func TestBatchOverTheBurstIsCharged(t *testing.T) {
	ts, clock, key, batch := ratedBatchServer(t, "owed")
	if a, res := postBatch(t, ts.URL, batch(40), key...); a.status != 200 || len(res) != 40 {
		t.Fatalf("40 with a full bucket of 10: %d %.300s", a.status, a.body)
	}
	// 40 published at 1/s with a burst of 10: the next one may go 31 s
	// later (10 + 31 = 41), not 1 s, and the 429 says so.
	if a := postJSON(t, ts.URL+"/api/publish", `{"channel":"owed","data":1}`, key...); a.status != http.StatusTooManyRequests ||
		a.header.Get("Retry-After") != "31" {
		t.Fatalf("a publish right after 40 at 1/s: %d, Retry-After %q, want 429 and 31", a.status, a.header.Get("Retry-After"))
	}
	clock.Advance(30 * time.Second)
	for _, path := range []string{"/api/batch", "/api/publish", "/api/broadcast"} {
		body := map[string]string{"/api/batch": batch(1), "/api/publish": `{"channel":"owed","data":1}`,
			"/api/broadcast": `{"channels":["owed"],"data":1}`}[path]
		if a := postJSON(t, ts.URL+path, body, key...); a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" {
			t.Fatalf("%s 30 s after 40 publications at 1/s: %d %s, Retry-After %q, want 429 and 1", path, a.status, a.body, a.header.Get("Retry-After"))
		}
	}
	clock.Advance(time.Second)
	if a, res := postBatch(t, ts.URL, batch(1), key...); a.status != 200 || len(res) != 1 {
		t.Fatalf("1 once the rate has paid for the batch: %d %s", a.status, a.body)
	}
	if top := topOffset(t, ts.Server, "owed"); top != 41 {
		t.Errorf("owed at offset %d, want 41", top)
	}
}

// TestBatchFailureStopsItsChannel: on both brokers, a publication the
// broker refuses (here a channel over the server's channel limit, which on
// Redis caps the channels a node starts) gets its error, the batch goes on
// for the other channels, and later publications to the failed channel are
// not attempted, so that what a channel published is a prefix of its
// publications in the batch.
func TestBatchFailureStopsItsChannel(t *testing.T) {
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			var redisURL string
			if name == "redis" {
				redisURL = brokertest.StartRedisServer(t).URL()
			}
			ts := newTestServer(t, func(c *Config) {
				c.MaxServerChannels = 2
				if redisURL != "" {
					c.Broker, c.RedisURL = "redis", redisURL
				}
			})
			a, res := postBatch(t, ts.URL, batchBody(t,
				pub("a", 1, ""), pub("b", 1, ""), pub("c", 1, ""), pub("a", 2, ""), pub("c", 2, ""), pub("b", 2, "")))
			if a.status != 200 || len(res) != 6 {
				t.Fatalf("batch: %d %s", a.status, a.body)
			}
			for i, want := range map[int]uint64{0: 1, 1: 1, 3: 2, 5: 2} {
				if res[i].Error != nil || res[i].Offset != want {
					t.Errorf("result %d: %+v, want offset %d", i, res[i], want)
				}
			}
			if r := res[2]; r.Error == nil || r.Error.Code != 503 || !strings.Contains(r.Error.Reason, "channel limit") {
				t.Errorf("the channel over the limit: %+v", r)
			}
			if r := res[4]; r.Error == nil || r.Error.Code != 503 || !strings.Contains(r.Error.Reason, "publications[2] to the same channel failed") {
				t.Errorf("the channel's next publication: %+v", r)
			}
		})
	}
}

// TestBatchRequestEnded: when the request's context has ended, no
// publication of the batch is attempted: each result is a 503 saying to
// resend, and the server logs the cut.
func TestBatchRequestEnded(t *testing.T) {
	ts := newTestServer(t, nil)
	for i, r := range postAfterClientLeft(t, ts, "/api/batch", batchBody(t, pub("cut", 1, "k1"), pub("cut", 2, "k2")), 2) {
		if r.Error == nil || r.Error.Code != 503 || !strings.Contains(r.Error.Reason, "resend it with the same key") {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if top := topOffset(t, ts.Server, "cut"); top != 0 {
		t.Errorf("cut at offset %d after the request ended", top)
	}
	if !strings.Contains(ts.logs.String(), "batch cut short") {
		t.Errorf("no log line of the cut: %s", ts.logs.String())
	}
}

// TestBatchHungRedisAnswers: while Redis hangs, each publication waits for
// the Redis client's own timeouts (3 s a command, more on a new
// connection), so a batch to many channels took that many times as long:
// 20 channels held the request for a minute, past its write deadline
// (twice the request timeout), so the backend got no answer at all. A
// batch now publishes for at most batchTime (5 s): the rest get 503 saying
// so, the answer comes in time, and resending the whole batch with its
// keys once Redis is back publishes each publication once.
func TestBatchHungRedisAnswers(t *testing.T) {
	rs, s, base := startOnRedis(t)
	const n = 20
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = pub(fmt.Sprintf("hung:%d", i), i, fmt.Sprintf("k%d", i))
	}
	body := batchBody(t, items...)
	if a, res := postBatch(t, base, batchBody(t, pub("hung:warm", 1, ""))); a.status != 200 || res[0].Error != nil {
		t.Fatalf("before the hang: %d %s", a.status, a.body)
	}

	got := postWhileRedisHangs(t, rs, base+"/api/batch", body)
	if len(got) != n {
		t.Fatalf("%d results, want %d: %+v", len(got), n, got)
	}
	if r := got[0]; r.Error == nil || r.Error.Code != 503 {
		t.Errorf("the publication Redis hung on: %+v", r)
	}
	if r := got[n-1]; r.Error == nil || r.Error.Code != 503 || !strings.Contains(r.Error.Reason, "ran out of time") {
		t.Errorf("the last publication: %+v, want 503 not published: ran out of time", r)
	}

	// Resent whole with the same keys: every publication once, at offset 1.
	for i, r := range resendUntilRedisAnswers(t, base+"/api/batch", body) {
		if r.Error != nil || r.Offset != 1 {
			t.Errorf("resent result %d: %+v", i, r)
		}
	}
	for i := range n {
		if top := topOffset(t, s, fmt.Sprintf("hung:%d", i)); top != 1 {
			t.Errorf("hung:%d at offset %d after the resend, want 1", i, top)
		}
	}
}

// TestBroadcastHungRedisAnswers: POST /api/broadcast had the fault
// TestBatchHungRedisAnswers found in batches: with Redis hung each channel
// waited for the Redis client's timeout, so a broadcast to 20 channels
// held its request for a minute and its answer was lost. It now publishes
// for at most batchTime too; the channels not attempted get 503 saying so,
// and resending the broadcast with its key once Redis is back publishes
// each channel once.
func TestBroadcastHungRedisAnswers(t *testing.T) {
	rs, _, base := startOnRedis(t)
	channels := make([]string, 20)
	for i := range channels {
		channels[i] = fmt.Sprintf("hung:%d", i)
	}
	b, _ := json.Marshal(map[string]any{"channels": channels, "data": 1, "key": "once"})
	body := string(b)
	if a := postJSON(t, base+"/api/publish", `{"channel":"hung:warm","data":1}`); a.status != 200 {
		t.Fatalf("before the hang: %d %s", a.status, a.body)
	}

	got := postWhileRedisHangs(t, rs, base+"/api/broadcast", body)
	if len(got) != len(channels) {
		t.Fatalf("%d results, want %d: %+v", len(got), len(channels), got)
	}
	if r := got[len(channels)-1]; r.Error == nil || r.Error.Code != 503 || !strings.Contains(r.Error.Reason, "ran out of time") {
		t.Errorf("the last channel: %+v, want 503 not published: ran out of time", r)
	}

	for i, r := range resendUntilRedisAnswers(t, base+"/api/broadcast", body) {
		if r.Error != nil || r.Offset != 1 {
			t.Errorf("resent result %d: %+v", i, r)
		}
	}
}

// startOnRedis starts a server on a redis-server of its own and returns
// both, and the server's URL.
func startOnRedis(t *testing.T) (*brokertest.RedisServer, *Server, string) {
	t.Helper()
	rs := brokertest.StartRedisServer(t)
	cfg := quietConfig()
	cfg.Broker, cfg.RedisURL = "redis", rs.URL()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rs, s, startServer(t, s)
}

// postWhileRedisHangs posts body (a batch or a broadcast) to url with rs
// paused, and returns the results of its 200 answer; rs runs again when it
// returns. The client waits 30 s, generously: the answer comes after about
// 5 s (10 s once in 12 runs, when the publication in flight had to open a
// connection); before the time bound it took 60 s and was lost.
func postWhileRedisHangs(t *testing.T, rs *brokertest.RedisServer, url, body string) []batchResult {
	t.Helper()
	rs.Pause()
	defer rs.Resume()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post(url, jsonType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("no answer while Redis hangs: %v", err)
	}
	var got batchAnswer // a broadcast's answer has the same shape
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("answer %d: %+v %v", resp.StatusCode, got, err)
	}
	return got.Results
}

// resendUntilRedisAnswers posts body to url until its first result is not
// an error (the Redis client has reconnected), at most 50 times, and
// returns the last results.
func resendUntilRedisAnswers(t *testing.T, url, body string) []batchResult {
	t.Helper()
	var res []batchResult
	for range 50 {
		if a := postJSON(t, url, body); a.status == 200 {
			var got batchAnswer
			a.decode(t, &got)
			if res = got.Results; len(res) > 0 && res[0].Error == nil {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return res
}

// writeConfig writes a config file of content and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "waterspout.json")
	writeFile(t, path, content)
	return path
}

// TestBatchRefundsWhatItNeverTried: a batch is charged every publication up
// front, and gives back those it never attempted (here: after a 403 on their
// channel, the prefix rule skips them), so a backend that resends them is
// not charged twice. What was attempted stays charged, refused or not.
func TestBatchRefundsWhatItNeverTried(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.APIKeys = []string{testAPIKey}
		c.Tokens.Keys = []TokenKey{{Secret: string(testSecret)}}
		c.RateLimits.PublishesPerSecond, c.RateLimits.PublishBurst = 1, 10
	})
	withClock(ts) // the bucket refills only when told
	tok, err := auth.Mint(auth.MintConfig{Sub: "billing", Kind: auth.KindPublisher, Publish: []string{"orders:*"},
		TTL: time.Hour, Key: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	cred := []string{"Authorization", "Bearer " + tok}
	// 5 charged; "news" #1 is tried (403), #2–#4 are skipped; orders:1 is
	// published: 2 tried, 3 given back, 8 left.
	a, res := postBatch(t, ts.URL, batchBody(t, pub("news", 1, ""), pub("news", 2, ""), pub("news", 3, ""),
		pub("news", 4, ""), pub("orders:1", 5, "")), cred...)
	if a.status != 200 || len(res) != 5 || res[0].Error == nil || res[0].Error.Code != 403 || res[4].Error != nil {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}
	for _, r := range res[1:4] {
		if r.Error == nil || !strings.Contains(r.Error.Reason, "not published: publications[0]") {
			t.Fatalf("a skipped publication: %+v", r)
		}
	}
	many := func(n int) string {
		items := make([]map[string]any, n)
		for i := range items {
			items[i] = pub("orders:2", i, "")
		}
		return batchBody(t, items...)
	}
	if a := postJSON(t, ts.URL+"/api/batch", many(9), cred...); a.status != http.StatusTooManyRequests {
		t.Fatalf("9 with 8 left: %d %s", a.status, a.body)
	}
	if a, res := postBatch(t, ts.URL, many(8), cred...); a.status != 200 || len(res) != 8 {
		t.Fatalf("8 with 8 left (3 given back): %d %s", a.status, a.body)
	}
}

// TestBatchOfOneLargestFits: at the smallest limits.maxBatchBytes the server
// starts with, a batch of one largest message (data of exactly
// maxMessageBytes, the longest channel name and key) is accepted, as the
// startup check promises.
func TestBatchOfOneLargestFits(t *testing.T) {
	const maxMessage = 1000
	ts := newTestServer(t, func(c *Config) { c.Limits.MaxMessageBytes, c.MaxBatchBytes = maxMessage, maxMessage+batchEnvelope })
	ch := strings.Repeat("c", session.MaxChannelLen)
	body := batchBody(t, map[string]any{"channel": ch, "data": strings.Repeat("x", maxMessage-2), "key": strings.Repeat("k", session.MaxKeyLen)})
	if a, res := postBatch(t, ts.URL, body); a.status != 200 || len(res) != 1 || res[0].Error != nil || res[0].Offset != 1 {
		t.Fatalf("a batch of one largest message (%d bytes) at maxBatchBytes %d: %d %.300s", len(body), maxMessage+batchEnvelope, a.status, a.body)
	}
}
