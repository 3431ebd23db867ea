package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
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
	base := startServer(t, s)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	poll := func(q url.Values, reused *bool) (cursor string, n int) {
		t.Helper()
		ctx := context.Background()
		if reused != nil {
			ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
				GotConn: func(ci httptrace.GotConnInfo) { *reused = ci.Reused },
			})
		}
		a := wiretest.PollOnce(ctx, t, client, base+"/connect/poll", q)
		return *a.Cursor, len(a.Messages)
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
		wiretest.Eventually(t, "the held poll's session", func() bool { return s.Node().SessionCount() == 1 })
		wiretest.PublishInts(t, s.Node(), "c", 1, 1)
		<-got
		if !reused || n != 1 {
			t.Fatalf("held poll %d: reused connection %v, %d messages", i, reused, n)
		}
	}
}

// heldPollConn opens a raw connection and sends a poll that the server
// holds (it has a cursor and nothing is queued).
func heldPollConn(t *testing.T, s *Server, base string) *wiretest.RawConn {
	t.Helper()
	cursor := firstPollCursor(t, base, "c")
	http.DefaultClient.CloseIdleConnections() // its slot in the per-address limit
	c, err := wiretest.DialRaw(strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /connect/poll?channel=c&cursor=%s HTTP/1.1\r\nHost: x\r\n\r\n", cursor)
	wiretest.Eventually(t, "the held poll's session", func() bool { return s.Node().SessionCount() == 1 })
	// The poll leaves net/http after Config.PollDetach (quietConfig's is
	// short); nothing outside shows the moment after.
	time.Sleep(100 * time.Millisecond)
	return c
}

// A shutdown answers a held poll with the disconnect and Connection: close,
// and does not wait for that connection as if it served a request.
func TestHeldPollShutdownClosesAtOnce(t *testing.T) {
	s := newQuietServer(t)
	base, done := runServer(t, s, context.Background())
	c := heldPollConn(t, s, base)
	start := time.Now()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	<-done
	r, body, err := c.Answer()
	if r == nil {
		t.Fatal(err)
	}
	if !r.Close || !strings.Contains(string(body), `"code":3001`) {
		t.Fatalf("answer (Connection: close %v) %s, want close and disconnect 3001", r.Close, body)
	}
	// http.Server.Shutdown waits 5 s for a connection it thinks is new.
	if took > 3*time.Second {
		t.Errorf("Shutdown took %v with one held poll", took)
	}
}

// After a held poll the connection waits for the next request as an idle
// keep-alive connection does: the header timeout starts with the request,
// not with the answer.
func TestHeldPollConnectionIdlesLikeKeepAlive(t *testing.T) {
	s := newQuietServer(t)
	s.readHeaderTimeout, s.idleTimeout = 300*time.Millisecond, time.Minute
	base := startServer(t, s)
	c := heldPollConn(t, s, base)
	wiretest.PublishInts(t, s.Node(), "c", 1, 1)
	if _, _, err := c.Answer(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // past the header timeout, well under the idle timeout
	fmt.Fprint(c, "GET /connect/poll?channel=c HTTP/1.1\r\nHost: x\r\n\r\n")
	if r, _, err := c.Answer(); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("the next poll after 1 s idle: %v %v", r, err)
	}
}

// A held client that floods the connection and leaves gives its session
// and its per-address slot back at once.
func TestHeldPollFloodThenLeaveFreesTheSlot(t *testing.T) {
	cfg := quietConfig()
	cfg.RateLimits.ConnectionsPerIP = 1
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := startServer(t, s)
	c := heldPollConn(t, s, base)
	_, _ = c.Write(make([]byte, 9<<10))
	c.Close()
	wiretest.Eventually(t, "the session to end", func() bool { return s.Node().SessionCount() == 0 })
	var status int
	for range 100 { // the slot is given back when the connection closes
		resp, err := http.Get(base + "/connect/poll?channel=c")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		http.DefaultClient.CloseIdleConnections()
		if status = resp.StatusCode; status == http.StatusOK {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("after the flooding client left: %d", status)
}
