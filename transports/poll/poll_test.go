package poll

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// hour is a poll timeout no test waits for: an answer under it came from
// something other than the timeout.
const hour = time.Hour

func TestFirstPollAnswersAtOnce(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}})
	e.publish(t, "b", 1, 2)
	r := e.send(t, http.MethodGet, query("channel", "a", "channel", "b"), nil)
	wiretest.CheckHeaders(t, r.Header, map[string]string{
		"Content-Type":           "application/json; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	})
	a := decodeAnswer(t, r)
	if got := wiretest.Types(a.Messages); !slices.Equal(got, []string{"hello", "subscribed", "subscribed"}) {
		t.Fatalf("frames %v, want hello and two subscribed", got)
	}
	if a.Messages[0].Transport != "poll" {
		t.Errorf("hello %+v", a.Messages[0])
	}
	want := session.Cursor{}
	for _, f := range a.Messages[1:] {
		if f.Recovered != nil {
			t.Errorf("fresh subscribe has recovered: %+v", f)
		}
		want[f.Channel] = session.Position{Epoch: f.Epoch, Offset: f.Offset}
	}
	if got := cursorOf(t, a); got.Encode() != want.Encode() || got["b"].Offset != 2 {
		t.Errorf("cursor %v, want %v", got, want)
	}
	e.WaitSessions(t, 0)
}

func TestHeldPollReturnsOnPublish(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}})
	first := e.poll(t, query("channel", "a"))
	done := e.pollAsync(query("channel", "a", "cursor", *first.Cursor))
	e.WaitSessions(t, 1)
	if _, err := e.Node.Publish(context.Background(), "a", []byte(`{"text":"routed"}`), ""); err != nil {
		t.Fatal(err)
	}
	a := decodeAnswer(t, <-done)
	if len(a.Messages) != 1 || a.Messages[0].Type != "message" || string(a.Messages[0].Data) != `{"text":"routed"}` {
		t.Fatalf("answer %+v, want the one message", a)
	}
	m := a.Messages[0]
	if got := cursorOf(t, a); got["a"] != (session.Position{Epoch: m.Epoch, Offset: 1}) {
		t.Errorf("cursor %v, want a at offset 1", got)
	}
}

func TestHeldPollTimesOut(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: 300 * time.Millisecond}})
	first := e.poll(t, query("channel", "a", "channel", "b"))
	a := e.poll(t, query("channel", "a", "channel", "b", "cursor", *first.Cursor))
	if len(a.Messages) != 0 || *a.Cursor != *first.Cursor {
		t.Errorf("answer %+v, want no messages and the same cursor %s", a, *first.Cursor)
	}
}

// TestServerTimeouts: a server hardened with read and write timeouts shorter
// than the poll timeout must not cut held polls. net/http cancels the request
// context when its leftover request read deadline fires, and its write
// deadline would fail the late answer.
func TestServerTimeouts(t *testing.T) {
	e := newEnv(t, envConfig{
		Options: Options{Timeout: time.Second},
		Server:  wiretest.ServerTimeouts(200 * time.Millisecond),
	})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			first := e.poll(t, query("channel", "a"))
			r := e.send(t, method, query("channel", "a", "cursor", *first.Cursor), nil)
			if a := decodeAnswer(t, r); len(a.Messages) != 0 || *a.Cursor != *first.Cursor {
				t.Errorf("answer %s, want the timeout's empty answer", r.Body)
			}
		})
	}
}

func TestResumeFromHistory(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}})
	first := e.poll(t, query("channel", "a"))
	e.publish(t, "a", 1, 3)
	// Resumes are quiet: no hello, no subscribed, only what was missed.
	a := e.poll(t, query("channel", "a", "cursor", *first.Cursor))
	if got := numbers(t, a.Messages, "a"); len(a.Messages) != 3 || !slices.Equal(got, wiretest.Seq(1, 3)) {
		t.Fatalf("frames %v, want messages 1..3 only", wiretest.Types(a.Messages))
	}
	if cursorOf(t, a)["a"].Offset != 3 {
		t.Errorf("cursor %v, want a at 3", cursorOf(t, a))
	}
}

// TestLongResumeIsPaged: a poll resuming far back answers at most about
// maxQueueBytes, and the following polls continue from its cursor until
// every message has arrived exactly once.
func TestLongResumeIsPaged(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}, Node: session.Config{Limits: session.Limits{MaxQueueBytes: 4 << 10}}})
	first := e.poll(t, query("channel", "a"))
	e.publish(t, "a", 1, 500)
	cursor := *first.Cursor
	var got []int
	answers := 0
	for len(got) < 500 {
		a := e.poll(t, query("channel", "a", "cursor", cursor))
		if len(a.Messages) == 0 {
			t.Fatalf("empty answer after %d messages", len(got))
		}
		got = append(got, numbers(t, a.Messages, "a")...)
		cursor = *a.Cursor
		answers++
	}
	if !slices.Equal(got, wiretest.Seq(1, 500)) {
		t.Fatalf("paged resume delivered %v", got)
	}
	if answers < 2 {
		t.Fatalf("500 messages over a 4 KB bound came in %d answer(s): the answer is not bounded", answers)
	}
}

func TestEpochChange(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}})
	e.publish(t, "a", 1, 2)
	stale := session.Cursor{"a": {Epoch: "gone", Offset: 1}}.Encode()
	a := e.poll(t, query("channel", "a", "cursor", stale))
	// recovered:false at the start of the current epoch, then all it holds.
	if len(a.Messages) != 3 || !slices.Equal(numbers(t, a.Messages, "a"), wiretest.Seq(1, 2)) {
		t.Fatalf("frames %v, want subscribed and messages 1..2", wiretest.Types(a.Messages))
	}
	f := a.Messages[0]
	if f.Type != "subscribed" || f.Recovered == nil || *f.Recovered || f.Epoch == "gone" || f.Offset != 0 {
		t.Fatalf("frame %+v, want subscribed recovered:false at offset 0 of the current epoch", f)
	}
	if got := cursorOf(t, a)["a"]; got != (session.Position{Epoch: f.Epoch, Offset: 2}) {
		t.Errorf("cursor position %v, want the new epoch at 2", got)
	}
}

func TestNewChannelWithCursor(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}})
	first := e.poll(t, query("channel", "a"))
	// The client added channel b: it is announced; a resumes quietly.
	a := e.poll(t, query("channel", "a", "channel", "b", "cursor", *first.Cursor))
	if len(a.Messages) != 1 || a.Messages[0].Type != "subscribed" || a.Messages[0].Channel != "b" || a.Messages[0].Recovered != nil {
		t.Fatalf("frames %+v, want one fresh subscribed for b", a.Messages)
	}
	if c := cursorOf(t, a); len(c) != 2 {
		t.Errorf("cursor %v, want both channels", c)
	}
}

// TestPollLoop polls in a loop while another goroutine publishes: every
// message arrives exactly once, in order.
func TestPollLoop(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: 300 * time.Millisecond}})
	const n = 300
	q := query("channel", "a", "channel", "b")
	cursor := *e.poll(t, q).Cursor
	go func() {
		for i := 1; i <= n; i++ {
			e.publish(t, "a", i, i)
			e.publish(t, "b", i, i)
			if i%3 == 0 {
				// Spread the stream over many polls, some of them held.
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var got []frame
	polls := 0
	for len(got) < 2*n {
		if polls++; polls > 10*n {
			t.Fatalf("after %d polls got %d messages", polls, len(got))
		}
		q.Set("cursor", cursor)
		a := e.poll(t, q)
		for _, f := range a.Messages {
			if f.Type != "message" {
				t.Fatalf("unexpected frame %+v", f)
			}
		}
		got = append(got, a.Messages...)
		cursor = *a.Cursor
	}
	for _, ch := range []string{"a", "b"} {
		if nums := numbers(t, got, ch); !slices.Equal(nums, wiretest.Seq(1, n)) {
			t.Errorf("channel %s got %v", ch, nums)
		}
	}
	t.Logf("%d messages in %d polls", len(got), polls)
}

func TestLingerBatches(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour, Linger: 500 * time.Millisecond}})
	first := e.poll(t, query("channel", "a"))
	done := e.pollAsync(query("channel", "a", "cursor", *first.Cursor))
	e.WaitSessions(t, 1)
	e.publish(t, "a", 1, 5) // the first wakes the poll; the rest arrive while it lingers
	if a := decodeAnswer(t, <-done); !slices.Equal(numbers(t, a.Messages, "a"), wiretest.Seq(1, 5)) {
		t.Errorf("answer %v, want 1..5 in one answer", wiretest.Types(a.Messages))
	}
}

func TestShutdownAnswersDisconnect(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}})
	first := e.poll(t, query("channel", "a"))
	done := e.pollAsync(query("channel", "a", "cursor", *first.Cursor))
	e.WaitSessions(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), wiretest.WaitLimit)
	defer cancel()
	if err := e.Node.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	a := decodeAnswer(t, <-done)
	if len(a.Messages) != 1 || a.Messages[0].Type != "disconnect" || a.Messages[0].Code != 3001 || !a.Messages[0].Reconnect {
		t.Fatalf("answer %+v, want a disconnect 3001 with reconnect", a.Messages)
	}
	if *a.Cursor != *first.Cursor {
		t.Errorf("cursor %s, want the request's %s", *a.Cursor, *first.Cursor)
	}
	r, err := e.do(context.Background(), http.MethodGet, query("channel", "a"), nil)
	if err != nil || r.Status != http.StatusServiceUnavailable {
		t.Errorf("poll during shutdown: %d %s %v, want 503", r.Status, r.Body, err)
	}
}

func TestClientGoneClosesSession(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}})
	first := e.poll(t, query("channel", "a"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.do(ctx, http.MethodGet, query("channel", "a", "cursor", *first.Cursor), nil)
	}()
	e.WaitSessions(t, 1)
	cancel()
	<-done
	e.WaitSessions(t, 0)
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, envConfig{
		Node: session.Config{Limits: session.Limits{MaxChannels: 2}, Namespaces: []session.Namespace{{Name: "private"}}},
	})
	for _, tc := range []struct {
		name   string
		q      url.Values
		header map[string]string
		status int
		reason string
	}{
		{"no channel", query(), nil, 400, "no channel"},
		{"invalid channel", query("channel", "a/b"), nil, 400, ""},
		{"duplicate channel", query("channel", "a", "channel", "a"), nil, 400, "duplicate channel a"},
		{"too many channels", query("channel", "a", "channel", "b", "channel", "c"), nil, 429, "too many channels"},
		{"malformed cursor", query("channel", "a", "cursor", "nope"), nil, 400, "invalid cursor"},
		{"channel needs credentials", query("channel", "private:x"), nil, 403, "private:x: permission denied"},
		{"origin not allowed", query("channel", "a"), map[string]string{"Origin": "http://evil.example"}, 403, "origin not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(t, http.MethodGet, tc.q, tc.header)
			if r.Status != tc.status {
				t.Fatalf("status %d %s, want %d", r.Status, r.Body, tc.status)
			}
			a := pollAnswer{}
			if err := jsonUnmarshal(r.Body, &a); err != nil || a.Error == nil || a.Error.Code != tc.status || tc.reason != "" && a.Error.Reason != tc.reason {
				t.Errorf("body %s, want code %d reason %q", r.Body, tc.status, tc.reason)
			}
			e.WaitSessions(t, 0)
		})
	}
	r, err := e.do(context.Background(), http.MethodPut, query("channel", "a"), nil)
	if err != nil || r.Status != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d %v, want 405", r.Status, err)
	}
}

func TestPOSTForm(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}})
	// 60 channels of 30 bytes and their cursor: more than old browsers
	// take in a URL (2 KB), within what a cursor can hold (4 KB).
	q := url.Values{}
	for i := range 60 {
		q.Add("channel", fmt.Sprintf("%03d-%s", i, strings.Repeat("x", 26)))
	}
	r := e.send(t, http.MethodPost, q, nil)
	a := decodeAnswer(t, r)
	if len(a.Messages) != 61 || len(cursorOf(t, a)) != 60 {
		t.Fatalf("got %d frames and a cursor of %d channels, want hello and 60 subscribed", len(a.Messages), len(cursorOf(t, a)))
	}
	e.publish(t, q["channel"][42], 1, 1)
	q.Set("cursor", *a.Cursor)
	r = e.send(t, http.MethodPost, q, nil)
	if a := decodeAnswer(t, r); !slices.Equal(numbers(t, a.Messages, q["channel"][42]), []int{1}) || len(a.Messages) != 1 {
		t.Errorf("frames %v, want the one message", wiretest.Types(a.Messages))
	}

	q.Set("token", strings.Repeat("t", 2<<20))
	if r, err := e.do(context.Background(), http.MethodPost, q, nil); err != nil || r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: %d %v, want 413", r.Status, err)
	}
}

// TestTokens: Config.Authenticate sees the token of a GET query and of a POST
// form body alike.
func TestTokens(t *testing.T) {
	e := newEnv(t, envConfig{
		Options: Options{Timeout: hour},
		Transport: transports.Config{Authenticate: func(r *http.Request, _ *session.Session) error {
			if r.URL.Query().Get("token") != "good" {
				return session.DisconnectInvalidToken
			}
			return nil
		}},
	})
	for _, tc := range []struct {
		method, token string
		status        int
	}{
		{http.MethodGet, "good", 200},
		{http.MethodPost, "good", 200},
		{http.MethodGet, "forged", 401},
		{http.MethodPost, "forged", 401},
		{http.MethodPost, "", 401},
	} {
		t.Run(tc.method+" "+tc.token, func(t *testing.T) {
			q := query("channel", "a")
			if tc.token != "" {
				q.Set("token", tc.token)
			}
			r := e.send(t, tc.method, q, nil)
			if r.Status != tc.status {
				t.Errorf("%d %s, want %d", r.Status, r.Body, tc.status)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}})
	for _, tc := range []struct {
		name, method, origin string
		status               int
		allowed              bool
	}{
		{"allowed origin", http.MethodGet, wiretest.AllowedOrigin, 200, true},
		{"denied origin", http.MethodGet, "http://evil.example", 403, false},
		{"no origin", http.MethodGet, "", 200, false},
		{"preflight allowed", http.MethodOptions, wiretest.AllowedOrigin, 204, true},
		{"preflight denied", http.MethodOptions, "http://evil.example", 403, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.origin != "" {
				h["Origin"] = tc.origin
			}
			r := e.send(t, tc.method, query("channel", "a"), h)
			if r.Status != tc.status {
				t.Fatalf("status %d %s, want %d", r.Status, r.Body, tc.status)
			}
			acao, creds := r.Header.Get("Access-Control-Allow-Origin"), r.Header.Get("Access-Control-Allow-Credentials")
			// A refused page may read the 403, without credentials.
			if tc.allowed != (acao == tc.origin && creds == "true") || !tc.allowed && acao != tc.origin {
				t.Errorf("CORS headers %q %q", acao, creds)
			}
			if !slices.Contains(r.Header.Values("Vary"), "Origin") {
				t.Errorf("Vary %v lacks Origin", r.Header.Values("Vary"))
			}
		})
	}
}

// TestHeldPollsReleased holds polls over raw TCP connections and ends them
// the two ways a held poll ends in production: a publication answers it (and
// the client then goes), or the client goes first; both while net/http
// holds the polls and once they have detached onto their bare connections.
// Every poll must free its session and its goroutines: what a server holding
// polls for hours relies on. (Without the reader's Fail on a gone client, the
// detached case keeps all 200 sessions.) The memory a held poll costs is
// measured by BenchmarkHeldPollMemory.
func TestHeldPollsReleased(t *testing.T) {
	for _, mode := range []struct {
		name   string
		detach time.Duration
	}{
		{"held by net/http", -1},
		{"detached from net/http", time.Nanosecond},
	} {
		t.Run(mode.name, func(t *testing.T) {
			const polls = 200
			e := newEnv(t, envConfig{Options: Options{Timeout: hour, Detach: mode.detach}})
			cursor := *e.poll(t, query("channel", "idle")).Cursor
			e.WaitSessions(t, 0)
			baseline := runtime.NumGoroutine()
			for round, byPublish := range []bool{true, false} {
				conns := holdPolls(t, e, cursor, polls)
				if byPublish {
					e.publish(t, "idle", 1, 1)
					for i, c := range conns {
						resp, b, err := c.Answer()
						if err != nil {
							t.Fatalf("round %d, poll %d: %v", round, i, err)
						}
						if resp.StatusCode != http.StatusOK || !strings.Contains(b, `"type":"message"`) {
							t.Fatalf("round %d, poll %d: %d %q, want the message", round, i, resp.StatusCode, b)
						}
					}
				} else if mode.detach > 0 {
					time.Sleep(50 * time.Millisecond) // past Detach: every poll waits on its bare connection
				}
				for _, c := range conns {
					c.Close()
				}
				e.WaitSessions(t, 0)
				deadline := time.Now().Add(wiretest.WaitLimit)
				for runtime.NumGoroutine() > baseline {
					if time.Now().After(deadline) {
						buf := make([]byte, 1<<20)
						t.Fatalf("round %d (ended by publish: %v): %d goroutines after %d polls ended, %d before:\n%s",
							round, byPublish, runtime.NumGoroutine(), polls, baseline, buf[:runtime.Stack(buf, true)])
					}
					time.Sleep(10 * time.Millisecond)
				}
				if byPublish { // the next round's polls resume after the message
					cursor = *e.poll(t, query("channel", "idle", "cursor", cursor)).Cursor
					e.WaitSessions(t, 0)
				}
			}
		})
	}
}

// holdPolls opens n raw connections that each send one poll with cursor
// (so that it is held) and waits until the node holds them all.
func holdPolls(tb testing.TB, e *testEnv, cursor string, n int) []*wiretest.RawConn {
	tb.Helper()
	request := []byte("GET /connect/poll?channel=idle&cursor=" + url.QueryEscape(cursor) + " HTTP/1.1\r\nHost: x\r\n\r\n")
	conns := make([]*wiretest.RawConn, 0, n)
	tb.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := wiretest.DialRaw(e.Srv.Listener.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write(request); err != nil {
			tb.Fatal(err)
		}
	}
	e.WaitSessions(tb, n)
	return conns
}

// BenchmarkHeldPollMemory holds 2,000 polls against one server per
// iteration and reports the heap and goroutine stack each costs, for the
// memory bar (DESIGN.md: a held long-poll ≤ 10 KB; docs/BENCHMARKS.md).
// The clients are raw TCP connections that cost the process almost nothing
// themselves; the figure includes net/http's per-connection buffers. Run
// it without -race, whose shadow memory is not what a server pays:
//
//	go test -run '^$' -bench HeldPollMemory ./transports/poll/
//
// Where the bytes go: add HELDPOLL_HEAPPROFILE=/tmp/p and -memprofilerate=1.
func BenchmarkHeldPollMemory(b *testing.B) {
	const polls = 2000
	e := newEnv(b, envConfig{Options: Options{Timeout: hour, Detach: time.Nanosecond}})
	cursor := *e.poll(b, query("channel", "idle")).Cursor
	e.WaitSessions(b, 0)
	var heap, stack float64
	for range b.N {
		before := memStats()
		conns := holdPolls(b, e, cursor, polls)
		after := memStats()
		if f := os.Getenv("HELDPOLL_HEAPPROFILE"); f != "" {
			out, _ := os.Create(f)
			_ = pprof.WriteHeapProfile(out)
			out.Close()
		}
		heap += float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / polls
		stack += float64(int64(after.StackInuse)-int64(before.StackInuse)) / polls
		for _, c := range conns {
			c.Close()
		}
		e.WaitSessions(b, 0)
	}
	b.ReportMetric(heap/float64(b.N), "heap-B/poll")
	b.ReportMetric(stack/float64(b.N), "stack-B/poll")
	b.ReportMetric((heap+stack)/float64(b.N)/1024, "KB/poll")
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func memStats() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// TestPollPresenceClient: the first poll is listed under its hello's
// client id; a later poll naming the hello's session with client=
// refreshes that entry; a
// later poll without a usable client= (an older client, a malformed id) is
// left out of presence rather than listed once per poll.
func TestPollPresenceClient(t *testing.T) {
	e := newEnv(t, envConfig{Node: session.Config{
		Namespaces: []session.Namespace{{Name: "room", Anonymous: true, Presence: true}},
		PollLease:  time.Hour,
	}, Options: Options{Timeout: 200 * time.Millisecond}})
	listed := func() []string {
		t.Helper()
		list, err := e.Node.Presence(context.Background(), "room:1")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range list {
			out = append(out, c.Client)
		}
		return out
	}
	a := e.poll(t, query("channel", "room:1"))
	claim, id := a.Messages[0].Session, a.Messages[0].Client
	if id == "" || id == claim {
		t.Fatalf("hello %+v: want the listed id in client, apart from the session", a.Messages[0])
	}
	if got := listed(); !slices.Equal(got, []string{id}) {
		t.Fatalf("presence %v after the first poll, want [%s]", got, id)
	}
	cur := *a.Cursor
	e.publish(t, "room:1", 1, 1) // answers the next poll at once
	e.poll(t, query("channel", "room:1", "cursor", cur, "client", claim))
	for _, bad := range [][]string{nil, {"not valid!"}} {
		q := query("channel", "room:1", "cursor", cur)
		q["client"] = bad
		e.poll(t, q)
	}
	// A claim given twice is refused, whether both are the same or not.
	for _, twice := range [][]string{{claim, claim}, {claim, "other"}} {
		q := query("channel", "room:1", "cursor", cur)
		q["client"] = twice
		if r := e.send(t, http.MethodGet, q, nil); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `the parameter \"client\" is given more than once`) {
			t.Fatalf("client %q: %d %s, want 400", twice, r.Status, r.Body)
		}
	}
	if got := listed(); !slices.Equal(got, []string{id}) {
		t.Fatalf("presence %v after later polls, want only [%s]", got, id)
	}
}
