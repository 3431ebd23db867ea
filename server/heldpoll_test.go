package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"testing"
	"time"
)

// Through the real server (listener, per-address limits, echo), a held
// long-poll runs on its hijacked connection and then hands it back: the
// client's next poll reuses it, and the slot the hold kept in the
// per-address connection limit comes back, so ten held polls in a row on
// one connection never reach a limit of two.
func TestHeldPollsReuseConnectionAndLimitSlot(t *testing.T) {
	cfg := quietConfig()
	cfg.RateLimits.ConnectionsPerIP = 2
	cfg.RateLimits.ConnectsPerSecond = 1000
	cfg.RateLimits.ConnectBurst = 1000
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	base, done := runServer(t, s, ctx)
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	poll := func(q url.Values, reused *bool) (cursor string, n int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/connect/poll?"+q.Encode(), nil)
		if reused != nil {
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(ci httptrace.GotConnInfo) { *reused = ci.Reused },
			}))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var a struct {
			Messages []json.RawMessage `json:"messages"`
			Cursor   string            `json:"cursor"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &a) != nil {
			t.Fatalf("poll: %d %s", resp.StatusCode, body)
		}
		return a.Cursor, len(a.Messages)
	}
	cursor, _ := poll(url.Values{"channel": {"c"}}, nil)
	for i := range 10 {
		got := make(chan struct{})
		var reused bool
		var n int
		go func() {
			defer close(got)
			cursor, n = poll(url.Values{"channel": {"c"}, "cursor": {cursor}}, &reused)
		}()
		for s.Node().SessionCount() != 1 {
			time.Sleep(time.Millisecond)
		}
		if _, err := s.Node().Publish(context.Background(), "c", json.RawMessage(`1`), ""); err != nil {
			t.Fatal(err)
		}
		<-got
		if !reused || n != 1 {
			t.Fatalf("held poll %d: reused connection %v, %d messages", i, reused, n)
		}
	}
}
