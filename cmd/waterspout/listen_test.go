package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/waterspout/waterspout/apiclient"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// waitFor waits until cond holds, failing the test after a generous bound
// (this is not a speed check: it only keeps a broken test from hanging).
func waitFor(t *testing.T, what string, cond func() bool, dump func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20 s for %s\n%s", what, dump())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type listened struct {
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	Epoch   string          `json:"epoch"`
	Data    json.RawMessage `json:"data"`
}

// lines parses listen's standard output.
func lines(t *testing.T, out string) []listened {
	t.Helper()
	var ls []listened
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var l listened
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		ls = append(ls, l)
	}
	return ls
}

// startListen runs `waterspout listen args...` until the test ends.
func startListen(t *testing.T, args ...string) (stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"listen"}, args...), &env{
			stdin: strings.NewReader(""), stdout: stdout, stderr: stderr,
			getenv: func(string) string { return "" },
		})
	}()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			code = <-done
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return stdout, stderr, stop
}

func publishN(t *testing.T, c *apiclient.Client, channel string, from, to int) apiclient.Result {
	t.Helper()
	var res apiclient.Result
	for i := from; i <= to; i++ {
		var err error
		res, err = c.Publish(context.Background(), apiclient.PublishRequest{Channel: channel, Data: map[string]int{"n": i}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// checkSequence checks the output is exactly offsets from..to of channel,
// each once, in order, with the data published.
func checkSequence(t *testing.T, got []listened, channel string, from, to int) {
	t.Helper()
	if len(got) != to-from+1 {
		t.Fatalf("printed %d messages, want %d (offsets %d..%d): %+v", len(got), to-from+1, from, to, got)
	}
	for i, l := range got {
		want := from + i
		if l.Channel != channel || l.Offset != uint64(want) || l.Epoch == "" || string(l.Data) != fmt.Sprintf(`{"n":%d}`, want) {
			t.Errorf("line %d: %+v, want %s offset %d data {\"n\":%d}", i, l, channel, want, want)
		}
	}
}

// TestListenResumesThroughCuts cuts the network between listen and the
// server, publishes while it is down, and checks that every message is
// printed once, in order, and that listen said it resumed.
func TestListenResumesThroughCuts(t *testing.T) {
	for _, transport := range []string{"ws", "sse", "poll"} {
		t.Run(transport, func(t *testing.T) {
			srv := apiServer(t)
			proxy := brokertest.StartProxy(t, strings.TrimPrefix(srv, "http://"))
			pub, err := apiclient.New(apiclient.Config{URL: srv})
			if err != nil {
				t.Fatal(err)
			}
			stdout, stderr, stop := startListen(t, "news", "--server", "http://"+proxy.Addr(), "--transport", transport)
			dump := func() string { return "stdout:\n" + stdout.String() + "stderr:\n" + stderr.String() }
			waitFor(t, "connected", func() bool { return strings.Contains(stderr.String(), "connected over "+transport) }, dump)
			// A WebSocket says hello before its subscribe is answered: a
			// fresh subscription starts at the channel's position then, so
			// what is published before it would not be the listener's.
			waitFor(t, "the subscription", func() bool { return subscribers(t, srv, "news") > 0 }, dump)

			publishN(t, pub, "news", 1, 3)
			waitFor(t, "3 messages", func() bool { return len(lines(t, stdout.String())) == 3 }, dump)

			proxy.Cut(true)
			waitFor(t, "the cut noticed", func() bool { return strings.Contains(stderr.String(), "connection lost") }, dump)
			publishN(t, pub, "news", 4, 6)
			proxy.Restore()
			waitFor(t, "6 messages", func() bool { return len(lines(t, stdout.String())) >= 6 }, dump)
			waitFor(t, "the resume reported", func() bool {
				return strings.Contains(stderr.String(), "reconnected over "+transport) &&
					strings.Contains(stderr.String(), "news: resumed from ")
			}, dump)
			if code := stop(); code != 0 {
				t.Fatalf("exit %d\n%s", code, dump())
			}
			got := lines(t, stdout.String())
			checkSequence(t, got, "news", 1, 6)
			t.Logf("stderr:\n%s", stderr)
			if want := "news: resumed from " + got[0].Epoch + ":3, nothing lost"; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
			if strings.Contains(stderr.String(), "NOT RECOVERED") || strings.Contains(stderr.String(), "GAP") {
				t.Errorf("a loss reported where there was none:\n%s", stderr.String())
			}
		})
	}
}

// TestListenSince resumes from a position given on the command line, and
// reports a position history cannot cover instead of skipping silently.
func TestListenSince(t *testing.T) {
	for _, transport := range []string{"ws", "sse", "poll"} {
		t.Run(transport, func(t *testing.T) {
			srv := apiServer(t)
			pub, err := apiclient.New(apiclient.Config{URL: srv})
			if err != nil {
				t.Fatal(err)
			}
			last := publishN(t, pub, "news", 1, 4)

			stdout, stderr, stop := startListen(t, "news", "--server", srv, "--transport", transport,
				"--since", fmt.Sprintf("news=%s:2", last.Epoch))
			dump := func() string { return "stdout:\n" + stdout.String() + "stderr:\n" + stderr.String() }
			waitFor(t, "offsets 3 and 4", func() bool { return len(lines(t, stdout.String())) >= 2 }, dump)
			publishN(t, pub, "news", 5, 5)
			waitFor(t, "offset 5", func() bool { return len(lines(t, stdout.String())) >= 3 }, dump)
			stop()
			checkSequence(t, lines(t, stdout.String()), "news", 3, 5)

			// Another epoch (a restart lost the old history): listen says
			// so, and the server continues from offset 0 of its epoch, whose
			// history is still complete, so all of it is printed.
			stdout, stderr, stop = startListen(t, "news", "--server", srv, "--transport", transport, "--since", "gone:7")
			waitFor(t, "the loss reported", func() bool {
				return strings.Contains(stderr.String(), "NOT RECOVERED") &&
					strings.Contains(stderr.String(), "continuing from "+last.Epoch+":0")
			}, dump)
			publishN(t, pub, "news", 6, 6)
			waitFor(t, "offsets 1..6", func() bool { return len(lines(t, stdout.String())) >= 6 }, dump)
			stop()
			checkSequence(t, lines(t, stdout.String()), "news", 1, 6)
		})
	}
}

func TestListenUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no channel", []string{"listen"}, "want at least one CHANNEL"},
		{"bad channel", []string{"listen", "a b"}, "invalid character"},
		{"twice", []string{"listen", "a", "a"}, "given twice"},
		{"bad transport", []string{"listen", "a", "--transport", "jsonp"}, "want ws, sse or poll"},
		{"since without channel", []string{"listen", "a", "b", "--since", "e1:3"}, "name the channel"},
		{"since of another channel", []string{"listen", "a", "--since", "b=e1:3"}, "not a channel listened to"},
		{"since malformed", []string{"listen", "a", "--since", "e1"}, "want EPOCH:OFFSET"},
		{"bad server", []string{"listen", "a", "--server", "ftp://x"}, "not an http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invoke(t, context.Background(), nil, "", tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

// TestListenSSECleanEndOfStream is r3labs/sse's first trap: its client
// returns nil, and does not reconnect, when a stream ends cleanly (a proxy
// closing an idle response, a server ending a stream). listen reconnects
// with a cursor of what it printed.
func TestListenSSECleanEndOfStream(t *testing.T) {
	var n atomic.Int32
	cursors := make(chan string, 2)
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		cursors <- r.URL.Query().Get("cursor")
		switch n.Add(1) {
		case 1:
			fmt.Fprint(w, "retry: 2000\n\n"+
				"data: {\"type\":\"hello\",\"session\":\"s1\",\"transport\":\"sse\",\"ping\":25}\n\n"+
				"data: {\"type\":\"subscribed\",\"channel\":\"news\",\"epoch\":\"E1\",\"offset\":0}\n\n"+
				"data: {\"type\":\"message\",\"channel\":\"news\",\"offset\":1,\"epoch\":\"E1\",\"data\":{\"n\":1}}\n\n")
			// Returning ends the body cleanly.
		default:
			fmt.Fprint(w, "data: {\"type\":\"hello\",\"session\":\"s2\",\"transport\":\"sse\",\"ping\":25}\n\n"+
				"data: {\"type\":\"subscribed\",\"channel\":\"news\",\"epoch\":\"E1\",\"offset\":1,\"recovered\":true}\n\n"+
				"data: {\"type\":\"message\",\"channel\":\"news\",\"offset\":2,\"epoch\":\"E1\",\"data\":{\"n\":2}}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	defer fake.Close()
	stdout, stderr, stop := startListen(t, "news", "--server", fake.URL, "--transport", "sse")
	dump := func() string { return "stdout:\n" + stdout.String() + "stderr:\n" + stderr.String() }
	waitFor(t, "offsets 1 and 2", func() bool { return len(lines(t, stdout.String())) >= 2 }, dump)
	stop()
	checkSequence(t, lines(t, stdout.String()), "news", 1, 2)
	if first, second := <-cursors, <-cursors; first != "" || second != (session.Cursor{"news": {Epoch: "E1", Offset: 1}}).Encode() {
		t.Errorf("cursors sent %q then %q, want none then news at E1:1", first, second)
	}
	for _, want := range []string{"connection lost (the stream ended)", "reconnected over sse", "news: resumed from E1:1, nothing lost"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestListenRefusedForGood checks a refusal the server would repeat ends
// listen (exit 1, one request) instead of retrying forever.
func TestListenRefusedForGood(t *testing.T) {
	for _, transport := range []string{"ws", "sse", "poll"} {
		t.Run(transport, func(t *testing.T) {
			var n atomic.Int32
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"error":{"code":403,"reason":"channel not allowed"}}`)
			}))
			defer fake.Close()
			r := invoke(t, context.Background(), nil, "", "listen", "news", "--server", fake.URL, "--transport", transport)
			if r.code != exitError || !strings.Contains(r.stderr, "403: channel not allowed") || n.Load() != 1 {
				t.Errorf("exit %d after %d requests, stderr %q", r.code, n.Load(), r.stderr)
			}
		})
	}
}

// TestListenRetriesTransientErrorFrames checks an error frame the server may
// not send again (503 broker unavailable, 429, 408) makes listen reconnect,
// while one it would repeat (403) ends it, as for HTTP answers.
func TestListenRetriesTransientErrorFrames(t *testing.T) {
	frames := []string{
		`{"type":"error","id":1,"code":503,"reason":"broker unavailable"}`,
		`{"type":"error","id":1,"code":429,"reason":"too many subscriptions"}`,
		`{"type":"error","id":1,"code":408,"reason":"timeout"}`,
		`{"type":"error","id":1,"code":403,"reason":"channel not allowed"}`,
	}
	var n atomic.Int32
	up := websocket.Upgrader{}
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		i := int(n.Add(1)) - 1
		_, _, _ = conn.ReadMessage() // the subscribe
		_ = conn.WriteMessage(websocket.TextMessage, []byte(frames[min(i, len(frames)-1)]))
		_, _, _ = conn.ReadMessage() // until listen hangs up
	}))
	defer fake.Close()
	r := invoke(t, context.Background(), nil, "", "listen", "news", "--server", fake.URL, "--transport", "ws")
	if r.code != exitError || n.Load() != int32(len(frames)) || !strings.Contains(r.stderr, "403 channel not allowed") ||
		!strings.Contains(r.stderr, "503 broker unavailable") {
		t.Errorf("exit %d after %d connections, stderr %q", r.code, n.Load(), r.stderr)
	}
}

// TestStatusError checks how listen takes a refused HTTP request: the
// server's reason (else the status text), fatal only when the server would
// refuse again.
func TestStatusError(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		want   string
		fatal  bool
	}{
		{503, `{"error":{"code":503,"reason":"broker unavailable"}}`, "server answered 503: broker unavailable", false},
		{502, `<html>bad gateway</html>`, "server answered 502: Bad Gateway", false},
		{429, `{"error":{"code":429,"reason":"slow down"}}`, "server answered 429: slow down", false},
		{408, ``, "server answered 408: Request Timeout", false},
		{400, `{"error":{"code":400,"reason":"bad channel"}}`, "server answered 400: bad channel", true},
		{401, `{"error":null}`, "server answered 401: Unauthorized", true},
	} {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tt.body))}
		err := statusError(resp)
		var fatal fatalError
		if err.Error() != tt.want || errors.As(err, &fatal) != tt.fatal {
			t.Errorf("statusError(%d, %q) = %q (fatal %v), want %q (fatal %v)", tt.status, tt.body, err, errors.As(err, &fatal), tt.want, tt.fatal)
		}
	}
}

// subscribers is ch's subscriber count on the server at base, from
// GET /api/channels (the test servers have an open loopback API).
func subscribers(t *testing.T, base, ch string) int {
	t.Helper()
	resp, err := http.Get(base + "/api/channels")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Channels []struct {
			Channel     string `json:"channel"`
			Subscribers int    `json:"subscribers"`
		} `json:"channels"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	for _, c := range out.Channels {
		if c.Channel == ch {
			return c.Subscribers
		}
	}
	return 0
}
