package sse

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

func TestStreamStart(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, tc := range []struct {
		name   string
		origin string
	}{
		{"no origin", ""},
		{"allowed cross origin", wiretest.AllowedOrigin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			st := e.dial(t, query("channel", "news"), h)
			wiretest.CheckHeaders(t, st.Resp.Header, map[string]string{
				"Content-Type":      "text/event-stream",
				"Cache-Control":     "no-cache, no-transform",
				"X-Accel-Buffering": "no",
			})
			// The server closes a stream's connection when the stream ends
			// (Connection: close, which net/http reads into Resp.Close):
			// said keep-alive, a client would pool it, and its next request
			// there (a POST is not retried) would fail.
			if !st.Resp.Close {
				t.Error("the stream's response lets the client keep its connection")
			}
			cors := st.Resp.Header.Get("Access-Control-Allow-Origin")
			switch {
			case tc.origin == "" && cors != "":
				t.Errorf("CORS header %q on a request without Origin", cors)
			case tc.origin != "" && (cors != tc.origin || st.Resp.Header.Get("Access-Control-Allow-Credentials") != "true"):
				t.Errorf("CORS headers %v, want origin %s with credentials", st.Resp.Header, tc.origin)
			}
			if !slices.Contains(st.Resp.Header.Values("Vary"), "Origin") {
				t.Errorf("Vary %v lacks Origin", st.Resp.Header.Values("Vary"))
			}

			// Nothing is published: hello and subscribed arrive because the
			// handler flushes them at once.
			if ev := st.Next(t); ev.Retry != "2000" || ev.Data != "" {
				t.Fatalf("first event %+v, want retry: 2000 alone", ev)
			}
			hello, subs := st.start(t, "news")
			if f := hello.Frame; f.Transport != "sse" || f.Session == "" || f.Ping != 25 {
				t.Errorf("hello %s", hello.Data)
			}
			if c, _ := session.DecodeCursor(hello.ID); len(c) != 0 {
				t.Errorf("hello id %q names positions for a request without cursor", hello.ID)
			}
			if subs["news"].Recovered != nil {
				t.Errorf("fresh subscribe has recovered=%v", *subs["news"].Recovered)
			}
		})
	}
}

func TestMessagesInOrder(t *testing.T) {
	e := newEnv(t, envConfig{})
	st := e.dial(t, query("channel", "a", "channel", "b"), nil)
	st.start(t, "a", "b")
	const n = 200
	go func() { // publishers race the writer: batching must keep order
		for i := 1; i <= n; i++ {
			e.Node.Publish(context.Background(), "a", json.RawMessage(strconv.Itoa(i)), "")
			e.Node.Publish(context.Background(), "b", json.RawMessage(strconv.Itoa(-i)), "")
		}
	}()
	fs, _ := st.messages(t, 2*n)
	if got := numbers(t, fs, "a"); !slices.Equal(got, wiretest.Seq(1, n)) {
		t.Errorf("channel a got %v", got)
	}
	var wantB []int
	for i := 1; i <= n; i++ {
		wantB = append(wantB, -i)
	}
	if got := numbers(t, fs, "b"); !slices.Equal(got, wantB) {
		t.Errorf("channel b got %v", got)
	}
}

// TestResume disconnects mid-stream, publishes more, and reconnects with the
// positions the first stream handed out: every message arrives exactly once.
func TestResume(t *testing.T) {
	e := newEnv(t, envConfig{})
	for i, tc := range []struct {
		name string
		// resume builds the reconnect from the event ids of messages 1..5.
		resume func(ch string, ids []string) (q map[string]string, lastEventID string)
	}{
		{"Last-Event-ID", func(_ string, ids []string) (map[string]string, string) {
			return nil, ids[4]
		}},
		{"cursor parameter", func(_ string, ids []string) (map[string]string, string) {
			return map[string]string{"cursor": ids[4]}, ""
		}},
		{"Last-Event-ID wins over an older cursor", func(_ string, ids []string) (map[string]string, string) {
			return map[string]string{"cursor": ids[1]}, ids[4]
		}},
		{"Last-Event-ID wins over a newer cursor", func(ch string, ids []string) (map[string]string, string) {
			// A browser's reconnect keeps the URL; here the URL is the odd one.
			ahead := session.Cursor{ch: {Epoch: "elsewhere", Offset: 99}}
			return map[string]string{"cursor": ahead.Encode()}, ids[4]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := "resume-" + strconv.Itoa(i)
			st := e.dial(t, query("channel", ch), nil)
			st.start(t, ch)
			e.Publish(t, ch, 1, 5)
			first, ids := st.messages(t, 5)
			st.Close()
			e.WaitSessions(t, 0)
			e.Publish(t, ch, 6, 10)

			extra, lei := tc.resume(ch, ids)
			q := query("channel", ch)
			for k, v := range extra {
				q.Set(k, v)
			}
			h := http.Header{}
			if lei != "" {
				h.Set("Last-Event-ID", lei)
			}
			st2 := e.dial(t, q, h)
			hello, subs := st2.start(t, ch)
			if hello.ID != ids[4] {
				t.Errorf("hello id %q, want the resume position %q", hello.ID, ids[4])
			}
			if r := subs[ch].Recovered; r == nil || !*r || subs[ch].Offset != 5 {
				t.Errorf("subscribed %+v, want recovered from offset 5", subs[ch])
			}
			replay, _ := st2.messages(t, 5)
			e.Publish(t, ch, 11, 12)
			live, _ := st2.messages(t, 2)
			got := numbers(t, slices.Concat(first, replay, live), ch)
			if !slices.Equal(got, wiretest.Seq(1, 12)) {
				t.Errorf("got %v, want 1..12 once each", got)
			}
		})
	}
}

// A cursor the stream cannot resume from as it is: one naming only other
// channels starts the named channel fresh, and carries none of its
// positions over; one of an epoch that is gone starts the channel over,
// recovered:false, with what the current epoch holds. Live messages follow.
func TestCursorNotResumable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cursor session.Cursor
		check  func(t *testing.T, hello event, sub frame)
		want   []int // the messages that arrive once 4 is published
	}{
		{"naming other channels", session.Cursor{"other": {Epoch: "x", Offset: 7}}, func(t *testing.T, hello event, s frame) {
			if c, _ := session.DecodeCursor(hello.ID); len(c) != 0 {
				t.Errorf("hello id %q: positions of unnamed channels must not carry over", hello.ID)
			}
			if s.Recovered != nil || s.Offset != 3 {
				t.Errorf("subscribed %+v, want a fresh subscription at offset 3", s)
			}
		}, []int{4}},
		{"of an epoch that is gone", session.Cursor{"c": {Epoch: "gone", Offset: 2}}, func(t *testing.T, hello event, s frame) {
			if want := (session.Cursor{"c": {Epoch: "gone", Offset: 2}}).Encode(); hello.ID != want {
				t.Errorf("hello id %q, want the request's cursor %q", hello.ID, want)
			}
			if s.Recovered == nil || *s.Recovered || s.Epoch == "gone" || s.Offset != 0 {
				t.Errorf("subscribed %+v, want recovered:false at the start (offset 0) of the current epoch", s)
			}
		}, []int{1, 2, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			e.Publish(t, "c", 1, 3)
			st := e.dial(t, query("channel", "c", "cursor", tc.cursor.Encode()), nil)
			hello, subs := st.start(t, "c")
			tc.check(t, hello, subs["c"])
			e.Publish(t, "c", 4, 4)
			fs, _ := st.messages(t, len(tc.want))
			if got := numbers(t, fs, "c"); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPing(t *testing.T) {
	e := newEnv(t, envConfig{Node: session.Config{Ping: time.Second}})
	st := e.dial(t, query("channel", "quiet"), nil)
	st.start(t, "quiet")
	for range 2 {
		ev := st.Next(t)
		if ev.Data != string(session.PingFrame) || ev.HasID {
			t.Fatalf("event %+v on an idle stream, want an unnamed ping event without id", ev)
		}
	}
}

// TestServerTimeouts: a server hardened with read and write timeouts shorter
// than the stream must not cut it. net/http cancels the request context when
// its leftover request read deadline fires, and its write deadline would fail
// the first write after it.
func TestServerTimeouts(t *testing.T) {
	e := newEnv(t, envConfig{
		Node:   session.Config{Ping: time.Second},
		Server: wiretest.ServerTimeouts(200 * time.Millisecond),
	})
	st := e.dial(t, query("channel", "c"), nil)
	st.start(t, "c")
	if ev := st.Next(t); ev.Frame.Type != "ping" { // a second after the timeouts
		t.Fatalf("event %+v, want a ping", ev)
	}
	e.Publish(t, "c", 1, 1)
	if fs, _ := st.messages(t, 1); wiretest.Number(t, fs[0]) != 1 {
		t.Fatalf("got %+v", fs)
	}
}

func TestShutdown(t *testing.T) {
	e := newEnv(t, envConfig{})
	st := e.dial(t, query("channel", "c"), nil)
	st.start(t, "c")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wiretest.WaitLimit)
		defer cancel()
		done <- e.Node.Shutdown(ctx)
	}()
	rest := st.End(t)
	if len(rest) != 1 || rest[0].Frame.Type != "disconnect" || rest[0].Frame.Code != session.DisconnectShutdown.Code || !rest[0].Frame.Reconnect {
		t.Fatalf("events before the end %+v, want one disconnect 3001 with reconnect", rest)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	_, status, body := e.open(t, query("channel", "c"), nil)
	if status != http.StatusServiceUnavailable {
		t.Errorf("connect during shutdown: %d %s, want 503", status, body)
	}
}

func TestClientGoneClosesSession(t *testing.T) {
	e := newEnv(t, envConfig{})
	st := e.dial(t, query("channel", "c"), nil)
	st.start(t, "c")
	st.Close()
	e.WaitSessions(t, 0)
	// Publishing to a channel whose only subscriber left reaches nobody and fails nothing.
	e.Publish(t, "c", 1, 3)
}

// TestStalledReader: a client that sends its request and never reads is
// dropped with a documented code, while a healthy client on the same channel
// receives everything.
func TestStalledReader(t *testing.T) {
	e := newEnv(t, envConfig{
		Node:      session.Config{Limits: session.Limits{MaxQueueBytes: 64 << 10}},
		Transport: transports.Config{WriteTimeout: time.Second},
		Server:    wiretest.SmallSendBuffers(8 << 10), // fill the stalled path sooner
	})
	healthy := e.dial(t, query("channel", "c"), nil)
	healthy.start(t, "c")

	stalled, err := wiretest.DialStalled(e.Srv.Listener.Addr().String(), http.MethodGet, "/connect/sse?channel=c")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	e.WaitSessions(t, 2)

	pad := strings.Repeat("x", 1000)
	const batch, maxMessages = 20, 20000 // a batch stays well under the healthy queue bound
	var got []int
	sent := 0
	read := func() {
		t.Helper()
		fs, _ := healthy.messages(t, batch)
		for _, f := range fs {
			var v struct{ N int }
			if err := json.Unmarshal(f.Data, &v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v.N)
		}
	}
	// Publish until the stalled session's queue overflows, then once more
	// while its writer waits out its write deadline.
	for round := 0; e.Metrics.SlowClients() == 0 || round%2 == 1; round++ {
		if sent >= maxMessages {
			t.Fatalf("the stalled client's queue did not overflow after %d messages", sent)
		}
		for range batch {
			sent++
			data := fmt.Sprintf(`{"n":%d,"pad":%q}`, sent, pad)
			if _, err := e.Node.Publish(context.Background(), "c", json.RawMessage(data), ""); err != nil {
				t.Fatal(err)
			}
		}
		read()
	}
	e.WaitSessions(t, 1)
	if !slices.Equal(got, wiretest.Seq(1, sent)) {
		t.Fatalf("healthy client got %d messages out of order or with gaps, want 1..%d", len(got), sent)
	}
	if codes := e.Metrics.ClosedCodes("sse"); !slices.Equal(codes, []int{session.DisconnectSlow.Code}) {
		t.Errorf("sessions closed with %v, want the stalled one with 3002", codes)
	}
	t.Logf("stalled client dropped after %d messages", sent)
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, envConfig{
		Node: session.Config{
			Limits:     session.Limits{MaxChannels: 2},
			Namespaces: []session.Namespace{{Name: "private"}},
		},
		Transport: transports.Config{Authenticate: func(r *http.Request, _ *session.Session) error {
			switch r.URL.Query().Get("token") {
			case "", "good":
				return nil
			case "banned":
				return session.DisconnectForbidden
			}
			return session.DisconnectInvalidToken
		}},
	})
	bad := strings.Repeat("A", 20)
	for _, tc := range []struct {
		name   string
		q      []string
		header map[string]string
		status int
		reason string
	}{
		{"no channel", nil, nil, 400, "no channel"},
		{"invalid channel", []string{"channel", "a b"}, nil, 400, ""},
		{"empty channel", []string{"channel", ""}, nil, 400, ""},
		{"duplicate channel", []string{"channel", "a", "channel", "a"}, nil, 400, "duplicate channel a"},
		{"too many channels", []string{"channel", "a", "channel", "b", "channel", "c"}, nil, 429, "too many channels"},
		{"malformed cursor", []string{"channel", "a", "cursor", bad}, nil, 400, "invalid cursor"},
		{"malformed Last-Event-ID", []string{"channel", "a"}, map[string]string{"Last-Event-ID": bad}, 400, "invalid cursor"},
		{"malformed Last-Event-ID with a good cursor", []string{"channel", "a", "cursor", session.Cursor{"a": {Epoch: "e", Offset: 1}}.Encode()}, map[string]string{"Last-Event-ID": bad}, 400, "invalid cursor"},
		{"origin not allowed", []string{"channel", "a"}, map[string]string{"Origin": "http://evil.example"}, 403, "origin not allowed"},
		{"invalid token", []string{"channel", "a", "token", "forged"}, nil, 401, "invalid token"},
		{"forbidden token", []string{"channel", "a", "token", "banned"}, nil, 403, "forbidden"},
		{"channel needs credentials", []string{"channel", "a", "channel", "private:x"}, nil, 403, "private:x: permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			_, status, body := e.open(t, query(tc.q...), h)
			if status != tc.status {
				t.Fatalf("status %d %s, want %d", status, body, tc.status)
			}
			got := errorBody(t, body)
			if got.Code != tc.status || tc.reason != "" && got.Reason != tc.reason {
				t.Errorf("body %s, want code %d reason %q", body, tc.status, tc.reason)
			}
			e.WaitSessions(t, 0)
		})
	}
	t.Run("malformed query", func(t *testing.T) {
		resp, err := e.Srv.Client().Get(e.Srv.URL + "/connect/sse?channel=a&x=%zz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("good token", func(t *testing.T) {
		st := e.dial(t, query("channel", "a", "token", "good"), nil)
		st.start(t, "a")
	})
}

func TestMethodsAndPreflight(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, tc := range []struct {
		method, origin string
		status         int
	}{
		{http.MethodPost, "", 405},
		{http.MethodOptions, wiretest.AllowedOrigin, 204},
		{http.MethodOptions, "http://evil.example", 403},
	} {
		t.Run(tc.method+" "+tc.origin, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.Srv.URL+"/connect/sse?channel=a", nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
				req.Header.Set("Access-Control-Request-Method", "GET")
			}
			resp, err := e.Srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			allow := resp.Header.Get("Access-Control-Allow-Origin")
			if (tc.status == 204) != (allow == tc.origin && resp.Header.Get("Access-Control-Allow-Methods") != "") {
				t.Errorf("preflight headers %v", resp.Header)
			}
		})
	}
}

// TestConcurrentStreams runs many streams on one channel: each sees the whole
// sequence (run with -race).
func TestConcurrentStreams(t *testing.T) {
	e := newEnv(t, envConfig{})
	const clients, n = 20, 50
	streams := make([]*stream, clients)
	for i := range streams {
		streams[i] = e.dial(t, query("channel", "fan"), nil)
		streams[i].start(t, "fan")
	}
	e.Publish(t, "fan", 1, n)
	for _, st := range streams { // each stream's reader buffers its events meanwhile
		fs, _ := st.messages(t, n)
		if got := numbers(t, fs, "fan"); !slices.Equal(got, wiretest.Seq(1, n)) {
			t.Errorf("got %v", got)
		}
	}
}
