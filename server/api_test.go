package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/apiclient"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

func TestPublish(t *testing.T) {
	ts := newTestServer(t, nil)
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		data        string // the delivered data, compact, when status is 200
		reason      string // part of the error reason otherwise
	}{
		{"json object", jsonType, `{"channel":"news","data":{"a":1}}`, 200, `{"a":1}`, ""},
		{"json pretty is compacted", jsonType, "{\"channel\":\"news\",\"data\":{\n  \"a\": [1, 2]\n}}", 200, `{"a":[1,2]}`, ""},
		{"json string", jsonType, `{"channel":"news","data":"hi"}`, 200, `"hi"`, ""},
		{"json null", jsonType, `{"channel":"news","data":null}`, 200, `null`, ""},
		{"json with charset", "application/json; charset=utf-8", `{"channel":"news","data":1}`, 200, `1`, ""},
		{"no content type is json", "", `{"channel":"news","data":2}`, 200, `2`, ""},
		{"form data is a string", formType, "channel=news&data=" + url.QueryEscape(`{"a":1} <b>`), 200, `"{\"a\":1} <b>"`, ""},
		{"form json is parsed", formType, "channel=news&json=" + url.QueryEscape(`{"a": 1}`), 200, `{"a":1}`, ""},
		{"form ignores other fields", formType, "channel=news&data=x&submit=Send", 200, `"x"`, ""},
		{"form invalid json", formType, "channel=news&json=" + url.QueryEscape(`{"a":`), 400, "", "not valid JSON"},
		{"form data and json", formType, "channel=news&data=x&json=1", 400, "", "either data or json"},
		{"form repeated channel", formType, "channel=a&channel=b&data=x", 400, "", "more than once"},
		{"form bad escape", formType, "channel=news&data=%zz", 400, "", "malformed form"},
		{"form invalid utf-8", formType, "channel=news&data=%ff", 400, "", "UTF-8"},
		{"bad json", jsonType, `{"channel":"news","data":`, 400, "", "malformed JSON"},
		{"trailing data", jsonType, `{"channel":"news","data":1} {}`, 400, "", "trailing"},
		{"a stray closing brace", jsonType, `{"channel":"news","data":1}}`, 400, "", "trailing"},
		{"a stray closing bracket", jsonType, `{"channel":"news","data":1}]`, 400, "", "trailing"},
		{"unknown field", jsonType, `{"channel":"news","data":1,"kye":"x"}`, 400, "", "unknown field"},
		// A gateway keeping the first of two names would see a publish to news.
		{"a name twice", jsonType, `{"channel":"news","Channel":"admin","data":1}`, 400, "", "appears twice"},
		{"missing data", jsonType, `{"channel":"news"}`, 400, "", "data is required"},
		{"missing channel", jsonType, `{"data":1}`, 400, "", "empty channel"},
		{"bad channel", jsonType, `{"channel":"news feed","data":1}`, 400, "", "invalid character"},
		{"long key", jsonType, `{"channel":"news","data":1,"key":"` + strings.Repeat("k", 257) + `"}`, 400, "", "key longer"},
		{"invalid utf-8 in data", jsonType, "{\"channel\":\"news\",\"data\":\"\xff\"}", 400, "", "UTF-8"},
		{"multipart", "multipart/form-data; boundary=x", "--x--", 415, "", "Content-Type"},
		{"text", "text/plain", "hello", 415, "", "Content-Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.contentType != "" {
				headers = []string{"Content-Type", tt.contentType}
			}
			a := do(t, http.MethodPost, ts.URL+"/api/publish", tt.body, headers...)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.status != 200 {
				if e := a.apiErr(t); !strings.Contains(e.Reason, tt.reason) {
					t.Errorf("reason %q, want it to contain %q", e.Reason, tt.reason)
				}
				return
			}
			var got transports.PublishAnswer
			a.decode(t, &got)
			if got.Channel != "news" || got.Offset == 0 || got.Epoch == "" {
				t.Fatalf("answer %+v", got)
			}
			h, err := ts.node.History(context.Background(), "news", &session.Position{Epoch: got.Epoch, Offset: got.Offset - 1}, 1)
			if err != nil || len(h.Publications) != 1 {
				t.Fatalf("history: %v %+v", err, h)
			}
			if d := string(h.Publications[0].Data); d != tt.data {
				t.Errorf("stored data %s, want %s", d, tt.data)
			}
		})
	}
}

func TestPublishIdempotentKey(t *testing.T) {
	ts := newTestServer(t, nil)
	sub := subscriber(t, ts.Server, "orders")
	readUntil(t, sub, func(f frame) bool { return f.Type == "subscribed" })

	body := `{"channel":"orders","data":{"order":42},"key":"order-42"}`
	first := postJSON(t, ts.URL+"/api/publish", body)
	second := postJSON(t, ts.URL+"/api/publish", body)
	if first.status != 200 || second.status != 200 {
		t.Fatalf("statuses %d %d: %s %s", first.status, second.status, first.body, second.body)
	}
	var a1, a2 transports.PublishAnswer
	first.decode(t, &a1)
	second.decode(t, &a2)
	if a1 != a2 {
		t.Errorf("repeat answered %+v, want the original %+v", a2, a1)
	}
	if first.header.Get(duplicateHeader) != "" {
		t.Errorf("first publish marked duplicate")
	}
	if second.header.Get(duplicateHeader) != "true" {
		t.Errorf("repeat not marked with %s", duplicateHeader)
	}
	// A different key on the same channel is new; it also ends the read.
	if a := postJSON(t, ts.URL+"/api/publish", `{"channel":"orders","data":"end","key":"other"}`); a.status != 200 {
		t.Fatalf("sentinel: %d %s", a.status, a.body)
	}
	frames := readUntil(t, sub, func(f frame) bool { return string(f.Data) == `"end"` })
	n := 0
	for _, f := range frames {
		if f.Type == "message" && f.Key == "order-42" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("subscriber got the keyed publication %d times, want once: %+v", n, frames)
	}
}

func TestPublishTooLarge(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Limits.MaxMessageBytes = 1000 })
	tests := []struct {
		name, contentType, body, reason string
	}{
		{"data over the limit", jsonType, `{"channel":"c","data":"` + strings.Repeat("x", 1000) + `"}`, "data larger than 1000"},
		{"body over the limit", jsonType, `{"channel":"c","data":"` + strings.Repeat("x", 20000) + `"}`, "request body larger than"},
		{"form data over the limit", formType, "channel=c&data=" + strings.Repeat("x", 1000), "data larger than 1000"},
		{"form body over the limit", formType, "channel=c&data=" + strings.Repeat("x", 20000), "request body larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, http.MethodPost, ts.URL+"/api/publish", tt.body, "Content-Type", tt.contentType)
			if a.status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			if e := a.apiErr(t); !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("reason %q, want %q", e.Reason, tt.reason)
			}
		})
	}
	t.Run("just under the limit", func(t *testing.T) {
		a := postJSON(t, ts.URL+"/api/publish", `{"channel":"c","data":"`+strings.Repeat("x", 998)+`"}`)
		if a.status != 200 {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	})
}

func TestBroadcast(t *testing.T) {
	ts := newTestServer(t, nil)
	sub := subscriber(t, ts.Server, "b")
	readUntil(t, sub, func(f frame) bool { return f.Type == "subscribed" })

	a := postJSON(t, ts.URL+"/api/broadcast", `{"channels":["a","b","bad channel"],"data":{"x":1},"key":"k"}`)
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var got struct {
		Results []broadcastResult `json:"results"`
	}
	a.decode(t, &got)
	if len(got.Results) != 3 {
		t.Fatalf("results %+v", got.Results)
	}
	for i, ch := range []string{"a", "b"} {
		if r := got.Results[i]; r.Channel != ch || r.Offset != 1 || r.Epoch == "" || r.Error != nil {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if r := got.Results[2]; r.Channel != "bad channel" || r.Error == nil || r.Error.Code != 400 {
		t.Errorf("bad channel result: %+v", r)
	}
	frames := readUntil(t, sub, func(f frame) bool { return f.Type == "message" })
	if f := frames[len(frames)-1]; f.Channel != "b" || string(f.Data) != `{"x":1}` {
		t.Errorf("subscriber got %+v", f)
	}
	// The same key again is a duplicate on every channel: same offsets.
	again := postJSON(t, ts.URL+"/api/broadcast", `{"channels":["a","b"],"data":{"x":1},"key":"k"}`)
	var got2 struct {
		Results []broadcastResult `json:"results"`
	}
	again.decode(t, &got2)
	if got2.Results[0].Offset != 1 || got2.Results[1].Offset != 1 {
		t.Errorf("repeated broadcast: %+v", got2.Results)
	}

	many := make([]string, maxBroadcastChannels+1)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	tooMany, _ := json.Marshal(map[string]any{"channels": many, "data": 1})
	for _, tt := range []struct{ name, body, reason string }{
		{"no channels", `{"channels":[],"data":1}`, "empty"},
		{"too many channels", string(tooMany), "more than 1000"},
		{"channel twice", `{"channels":["a","a"],"data":1}`, "listed twice"},
		{"no data", `{"channels":["a"]}`, "data is required"},
		{"bad json", `{"channels":`, "malformed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := postJSON(t, ts.URL+"/api/broadcast", tt.body)
			if a.status != 400 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			if e := a.apiErr(t); !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("reason %q, want %q", e.Reason, tt.reason)
			}
		})
	}
}

func TestHistory(t *testing.T) {
	ts := newTestServer(t, nil)
	var epoch string
	for i := 1; i <= 5; i++ {
		a := postJSON(t, ts.URL+"/api/publish", fmt.Sprintf(`{"channel":"h","data":%d}`, i))
		var pa transports.PublishAnswer
		a.decode(t, &pa)
		epoch = pa.Epoch
	}
	tests := []struct {
		name      string
		query     string
		offsets   []uint64
		recovered *bool
	}{
		{"all", "channel=h", []uint64{1, 2, 3, 4, 5}, nil},
		{"limit", "channel=h&limit=2", []uint64{1, 2}, nil},
		{"limit zero gives the position only", "channel=h&limit=0", nil, nil},
		{"since", "channel=h&since_epoch=" + epoch + "&since_offset=2", []uint64{3, 4, 5}, ptr(true)},
		{"since and limit", "channel=h&since_epoch=" + epoch + "&since_offset=2&limit=2", []uint64{3, 4}, ptr(true)},
		{"since the top", "channel=h&since_epoch=" + epoch + "&since_offset=5", nil, ptr(true)},
		{"wrong epoch", "channel=h&since_epoch=other&since_offset=2", nil, ptr(false)},
		{"offset beyond the top", "channel=h&since_epoch=" + epoch + "&since_offset=9", nil, ptr(false)},
		{"limit above the maximum is capped", "channel=h&limit=5000", []uint64{1, 2, 3, 4, 5}, nil},
		{"limit past any count is capped too", "channel=h&limit=99999999999999999999", []uint64{1, 2, 3, 4, 5}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, http.MethodGet, ts.URL+"/api/history?"+tt.query, "")
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			var h apiclient.History
			a.decode(t, &h)
			if h.Channel != "h" || h.Epoch != epoch || h.Offset != 5 {
				t.Errorf("top %s %s/%d", h.Channel, h.Epoch, h.Offset)
			}
			if (h.Recovered == nil) != (tt.recovered == nil) || (h.Recovered != nil && *h.Recovered != *tt.recovered) {
				t.Errorf("recovered %v, want %v", deref(h.Recovered), deref(tt.recovered))
			}
			var offsets []uint64
			for _, p := range h.Publications {
				offsets = append(offsets, p.Offset)
				if p.Channel != "h" || p.Epoch != epoch || p.Time == 0 || string(p.Data) != fmt.Sprint(p.Offset) {
					t.Errorf("publication %+v", p)
				}
			}
			if fmt.Sprint(offsets) != fmt.Sprint(tt.offsets) {
				t.Errorf("offsets %v, want %v", offsets, tt.offsets)
			}
			if h.Publications == nil {
				t.Errorf("publications is null, want []")
			}
		})
	}
	for _, tt := range []struct{ name, query, reason string }{
		{"no channel", "", "empty channel"},
		{"bad channel", "channel=a%20b", "invalid character"},
		{"epoch without offset", "channel=h&since_epoch=" + epoch, "together"},
		{"offset without epoch", "channel=h&since_offset=1", "together"},
		{"bad offset", "channel=h&since_epoch=e&since_offset=-1", "since_offset"},
		{"bad epoch", "channel=h&since_epoch=a%20b&since_offset=1", "epoch"},
		{"bad limit", "channel=h&limit=x", "limit"},
		{"negative limit", "channel=h&limit=-1", "non-negative integer"},
		{"offset past any offset", "channel=h&since_epoch=e&since_offset=99999999999999999999", "larger than any offset"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, http.MethodGet, ts.URL+"/api/history?"+tt.query, "")
			if a.status != 400 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			if e := a.apiErr(t); !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("reason %q, want %q", e.Reason, tt.reason)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func deref(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

func TestUnknownRoutesAnswerJSON(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/api/nope", 404},
		{http.MethodGet, "/api/publish", 405},
		{http.MethodGet, "/nope", 404},
	} {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			a := do(t, tt.method, ts.URL+tt.path, "")
			if a.status != tt.status {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			a.apiErr(t)
		})
	}
}

func TestPanicIsRecovered(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.echo.GET("/boom", func(echo.Context) error { panic("boom") }, ts.recover())
	a := do(t, http.MethodGet, ts.URL+"/boom", "")
	if a.status != 500 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if e := a.apiErr(t); e.Reason != "internal error" {
		t.Errorf("reason %q leaks the panic", e.Reason)
	}
	if !strings.Contains(ts.logs.String(), "panic in handler") {
		t.Errorf("panic not logged")
	}
}
