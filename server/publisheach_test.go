package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// endsWhen is a context that ends (Err says Canceled) once ended says so,
// as a request's does when its client goes away at that point.
type endsWhen struct {
	context.Context
	ended func() bool
}

func (c endsWhen) Err() error {
	if c.ended() {
		return context.Canceled
	}
	return nil
}

// TestPublishEachWholeIsNotCutShort: a batch whose request ends just after
// its last publication (the client gave up as the answer was due) was
// published whole; the server logged "batch cut short" at WARN all the
// same, sending an operator after publications that had all been made.
func TestPublishEachWholeIsNotCutShort(t *testing.T) {
	ts := newTestServer(t, nil)
	pubs := []publishRequest{{Channel: "whole", Data: json.RawMessage(`1`)}, {Channel: "whole", Data: json.RawMessage(`2`)}}
	ctx := endsWhen{context.Background(), func() bool { return topOffset(t, ts.Server, "whole") == uint64(len(pubs)) }}
	res, _ := ts.publishEach(ctx, nil, pubs, "batch", errBatchTime)
	for i, r := range res {
		if r.Error != nil || r.Offset != uint64(i+1) {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if logs := ts.logs.String(); strings.Contains(logs, "cut short") {
		t.Errorf("a whole batch logged as cut: %s", logs)
	}
}

// TestPublishEachCutShortLogged: a request that ends before its last
// publication, or during it, is logged as cut, with what was published.
func TestPublishEachCutShortLogged(t *testing.T) {
	ts := newTestServer(t, nil)
	pubs := []publishRequest{{Channel: "cut", Data: json.RawMessage(`1`)}, {Channel: "cut", Data: json.RawMessage(`2`)},
		{Channel: "cut", Data: json.RawMessage(`3`)}}
	ctx := endsWhen{context.Background(), func() bool { return topOffset(t, ts.Server, "cut") == 1 }}
	res, _ := ts.publishEach(ctx, nil, pubs, "batch", errBatchTime)
	if res[0].Error != nil || res[1].Error != errBatchCut || res[2].Error != errBatchCut {
		t.Fatalf("results %+v", res)
	}
	if logs := ts.logs.String(); !strings.Contains(logs, "batch cut short: the request ended") || !strings.Contains(logs, "published=1") {
		t.Errorf("no WARN line of the cut after 1 of 3: %s", logs)
	}
}

// TestBroadcastRequestEnded: a broadcast whose request has ended publishes
// to no channel; each result is a 503 saying to resend, and the cut is
// logged once, as a broadcast's.
func TestBroadcastRequestEnded(t *testing.T) {
	ts := newTestServer(t, nil)
	for i, r := range postAfterClientLeft(t, ts, "/api/broadcast", `{"channels":["gone:1","gone:2"],"data":1,"key":"k"}`, 2) {
		if r.Error == nil || r.Error.Code != 503 || !strings.Contains(r.Error.Reason, "resend") {
			t.Errorf("result %d: %+v", i, r)
		}
		if top := topOffset(t, ts.Server, r.Channel); top != 0 {
			t.Errorf("%s at offset %d after the request ended", r.Channel, top)
		}
	}
	if logs := ts.logs.String(); strings.Count(logs, "broadcast cut short: the request ended") != 1 || !strings.Contains(logs, "published=0") {
		t.Errorf("want one WARN line of the cut: %s", logs)
	}
}

// postAfterClientLeft serves a POST of body to path (a batch or a
// broadcast, JSON, from loopback) whose request context has already ended,
// as when its client went away, and returns the results of its 200 answer,
// which must hold n.
func postAfterClientLeft(t *testing.T, ts *testServer, path, body string, n int) []batchResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", jsonType)
	req.RemoteAddr, req.Host = "127.0.0.1:40000", "127.0.0.1"
	w := httptest.NewRecorder()
	ts.Handler().ServeHTTP(w, req)
	var got batchAnswer // a broadcast's answer has the same shape
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || len(got.Results) != n {
		t.Fatalf("answer %d %s: %v", w.Code, w.Body, err)
	}
	return got.Results
}
