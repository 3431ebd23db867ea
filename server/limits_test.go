package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/testclock"
	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/server/auth"
	"github.com/waterspout/waterspout/session"
)

// limited reads waterspout_limited_total{limit} from /metrics.
func limited(t *testing.T, ts *testServer, limit string) int {
	t.Helper()
	n, ok := metricValue(t, ts.URL, `waterspout_limited_total{limit="`+limit+`"}`)
	if !ok {
		t.Fatalf("no waterspout_limited_total{limit=%q} in /metrics", limit)
	}
	return int(n)
}

// counter checks that a limit's counter moved by want during f.
func counter(t *testing.T, ts *testServer, limit string, want int, f func()) {
	t.Helper()
	before := limited(t, ts, limit)
	f()
	if got := limited(t, ts, limit) - before; got != want {
		t.Errorf("waterspout_limited_total{limit=%q} moved by %d, want %d", limit, got, want)
	}
}

// withClock rebuilds the server's limiters on a clock the test moves.
func withClock(ts *testServer) *testclock.Clock {
	c := testclock.New(time.Unix(1_800_000_000, 0))
	ts.lim = newLimiters(ts.cfg.RateLimits, c.Now)
	return c
}

// from makes a request look, to a server trusting loopback proxies, as if it
// came from addr.
func from(addr string) []string { return []string{"X-Forwarded-For", addr} }

func limitErr(t *testing.T, o outcome, reason string) {
	t.Helper()
	if o.ok || o.code != http.StatusTooManyRequests || !strings.Contains(o.reason, reason) {
		t.Fatalf("got %v, want 429 %q", o, reason)
	}
}

func TestConnectionsPerIP(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.RateLimits.ConnectionsPerIP = 2
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	a := from("198.51.100.1")
	c1, _ := dialWSToken(t, ts.URL, "", a...)
	stream := openSSEStream(t, ts.URL, url.Values{"channel": {"news"}}, a...)
	counter(t, ts, limitConnections, 3, func() {
		_, o := dialWSToken(t, ts.URL, "", a...)
		limitErr(t, o, "too many connections")
		o, h := sseOpen(t, ts.URL, url.Values{"channel": {"news"}}, a...)
		limitErr(t, o, "too many connections")
		if h.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
		o, _ = pollGet(t, ts.URL, url.Values{"channel": {"news"}}, "", a...)
		limitErr(t, o, "too many connections")
	})
	t.Run("another address is not affected", func(t *testing.T) {
		if _, o := dialWSToken(t, ts.URL, "", from("198.51.100.2")...); !o.ok {
			t.Fatalf("%v", o)
		}
	})
	t.Run("a closed WebSocket gives its slot back", func(t *testing.T) {
		c1.Conn.Close()
		wiretest.Eventually(t, "a slot after the WebSocket closed", func() bool {
			_, o := dialWSToken(t, ts.URL, "", a...)
			return o.ok
		})
	})
	t.Run("an ended stream gives its slot back", func(t *testing.T) {
		stream.Close()
		wiretest.Eventually(t, "a slot after the stream ended", func() bool {
			o, _ := pollGet(t, ts.URL, url.Values{"channel": {"news"}}, "", a...)
			return o.ok
		})
	})
}

func TestConnectsPerSecond(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.RateLimits.ConnectsPerSecond, c.RateLimits.ConnectBurst = 1, 3
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	clock := withClock(ts)
	a, b := from("198.51.100.1"), from("2001:db8:1:2::1")
	q := func() url.Values { return url.Values{"channel": {"news"}} }
	for i := range 3 {
		if o, _ := pollGet(t, ts.URL, q(), "", a...); !o.ok {
			t.Fatalf("connect %d within the burst: %v", i+1, o)
		}
	}
	counter(t, ts, limitConnects, 4, func() {
		o, h := pollGet(t, ts.URL, q(), "", a...)
		limitErr(t, o, "too many connects")
		if h.Get("Retry-After") != "1" {
			t.Errorf("Retry-After %q", h.Get("Retry-After"))
		}
		_, o = dialWSToken(t, ts.URL, "", a...)
		limitErr(t, o, "too many connects")
		o, _ = pollGet(t, ts.URL, q(), "cb", a...) // JSONP too, before any session
		limitErr(t, o, "too many connects")
		_, o = dialSockJS(t, ts.URL, "", a...)
		limitErr(t, o, "too many connects")
	})
	t.Run("addresses have their own buckets; IPv6 by /64", func(t *testing.T) {
		for i := range 3 {
			if o, _ := pollGet(t, ts.URL, q(), "", b...); !o.ok {
				t.Fatalf("connect %d of another address: %v", i+1, o)
			}
		}
		o, _ := pollGet(t, ts.URL, q(), "", from("2001:db8:1:2::ffff")...) // same /64
		limitErr(t, o, "too many connects")
	})
	t.Run("preflights are free", func(t *testing.T) {
		ans := do(t, http.MethodOptions, ts.URL+"/connect/poll", "", append([]string{"Origin", ts.URL}, a...)...)
		if ans.status != http.StatusNoContent {
			t.Fatalf("preflight: %d %s", ans.status, ans.body)
		}
	})
	t.Run("the bucket refills", func(t *testing.T) {
		clock.Advance(time.Second)
		if o, _ := pollGet(t, ts.URL, q(), "", a...); !o.ok {
			t.Fatalf("after a second: %v", o)
		}
	})
	t.Run("X-Forwarded-For from an untrusted peer changes nothing", func(t *testing.T) {
		direct := newTestServer(t, func(c *Config) { c.RateLimits.ConnectsPerSecond, c.RateLimits.ConnectBurst = 1, 2 })
		withClock(direct)
		for i := range 3 {
			o, _ := pollGet(t, direct.URL, q(), "", from("203.0.113."+strconv.Itoa(i))...)
			if want := i < 2; o.ok != want {
				t.Fatalf("connect %d with a spoofed address: %v", i+1, o)
			}
		}
	})
}

// TestContinuingPolls checks that a long-poll carrying a cursor for one of
// its channels is charged to the poll budget, not the connect budget: a
// crowd behind one address keeps polling after new connects are refused,
// and the poll budget still refuses a flood of polls.
func TestContinuingPolls(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.RateLimits.ConnectsPerSecond, c.RateLimits.ConnectBurst = 1, 2
		c.RateLimits.PollsPerSecond, c.RateLimits.PollBurst = 1, 5
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	clock := withClock(ts)
	a := from("198.51.100.1")
	// A position from another epoch: the poll answers at once with
	// recovered:false rather than being held.
	cursorFor := func(ch string) string {
		return session.Cursor{ch: {Epoch: "gone", Offset: 7}}.Encode()
	}
	post := false // polls go as POST forms, as the client sends long channel lists
	poll := func(cursor string) outcome {
		q := url.Values{"channel": {"news"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if post {
			o, _ := pollPost(t, ts.URL, q, a...)
			return o
		}
		o, _ := pollGet(t, ts.URL, q, "", a...)
		return o
	}
	for i := range 2 {
		if o := poll(""); !o.ok {
			t.Fatalf("new poll %d within the connect burst: %v", i+1, o)
		}
	}
	counter(t, ts, limitConnects, 3, func() {
		limitErr(t, poll(""), "too many connects") // a flood of new connections is still refused
		t.Run("a cursor for another channel is a connect", func(t *testing.T) {
			limitErr(t, poll(cursorFor("other")), "too many connects")
		})
		t.Run("a malformed cursor is a connect", func(t *testing.T) {
			limitErr(t, poll("!!not-a-cursor"), "too many connects")
		})
	})
	counter(t, ts, limitPolls, 1, func() {
		for i := range 5 {
			if o := poll(cursorFor("news")); !o.ok {
				t.Fatalf("continuing poll %d with the connect budget spent: %v", i+1, o)
			}
		}
		limitErr(t, poll(cursorFor("news")), "too many polls")
	})
	t.Run("other routes are connects", func(t *testing.T) {
		o, _ := sseOpen(t, ts.URL, url.Values{"channel": {"news"}, "cursor": {cursorFor("news")}}, a...)
		limitErr(t, o, "too many connects")
	})
	t.Run("POST polls", func(t *testing.T) {
		post = true
		defer func() { post = false }()
		limitErr(t, poll(""), "too many connects") // the connect budget is still spent
		clock.Advance(time.Second)                 // one more poll in the poll budget
		counter(t, ts, limitPolls, 1, func() {
			if o := poll(cursorFor("news")); !o.ok {
				t.Fatalf("a continuing POST poll with the connect budget spent: %v", o)
			}
			limitErr(t, poll(cursorFor("news")), "too many polls")
		})
	})
}

// TestSlowPOSTPollHoldsItsSlot: the guard reads a POST poll's body to find
// its cursor before it picks a rate budget; a client that sends the body
// slowly holds a connection slot meanwhile, as every connection does, so
// slow bodies cannot pile up past --max-connections-per-ip uncounted.
func TestSlowPOSTPollHoldsItsSlot(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.RateLimits.ConnectionsPerIP = 1
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	c, err := wiretest.DialRaw(strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Headers and the start of a body that promises more.
	if _, err := c.Write([]byte("POST /connect/poll HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.7\r\n" +
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\nchannel=news&cursor=")); err != nil {
		t.Fatal(err)
	}
	wiretest.Eventually(t, "the slow poll to take its slot", func() bool {
		o, _ := pollGet(t, ts.URL, url.Values{"channel": {"news"}}, "", from("198.51.100.7")...)
		return !o.ok && o.code == http.StatusTooManyRequests && strings.Contains(o.reason, "too many connections")
	})
}

// TestSlowPOSTPollBody: a POST poll whose body comes later than a
// request's headers may (a slow link, a proxy that does not buffer) is
// answered as any poll, and its keep-alive connection serves the next
// poll. A read deadline on the guard's read of the body cancelled the
// connection's context when it passed: both answers were empty 200s.
func TestSlowPOSTPollBody(t *testing.T) {
	cfg := quietConfig()
	cfg.PollTimeout, cfg.PollDetach = time.Second, time.Minute // held on net/http, answered at the timeout
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.readHeaderTimeout = 100 * time.Millisecond
	base := startServer(t, s)
	cursor := *wiretest.PollOnce(context.Background(), t, nil, base+"/connect/poll", wiretest.Query("channel", "news")).Cursor
	c, err := wiretest.DialRaw(strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := url.Values{"channel": {"news"}, "cursor": {cursor}}.Encode()
	head := fmt.Sprintf("POST /connect/poll HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", len(body))
	if _, err := c.Write([]byte(head + body[:4])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * s.readHeaderTimeout) // the rest of the body, late
	if _, err := c.Write([]byte(body[4:])); err != nil {
		t.Fatal(err)
	}
	for _, poll := range []string{"the slow POST poll", "the next poll on its connection"} {
		resp, got, err := c.Answer()
		if err != nil {
			t.Fatalf("%s: %v", poll, err)
		}
		ans, err := wire.DecodePoll([]byte(got), "")
		if resp.StatusCode != http.StatusOK || err != nil || ans.Cursor == nil {
			t.Fatalf("%s: %d %q (%v), want a poll answer with a cursor", poll, resp.StatusCode, got, err)
		}
		if _, err := c.Write([]byte("GET /connect/poll?" + url.Values{"channel": {"news"}, "cursor": {cursor}}.Encode() + " HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQuotasPerKey: --publishes-per-second and --api-calls-per-second are
// buckets per credential, apart from each other. A publication (a broadcast
// counts one per channel) spends the first; history, presence, channels
// and control requests share the second. Past a bucket: 429 with
// Retry-After, counted in the metric; another credential is not limited;
// a second refills it.
func TestQuotasPerKey(t *testing.T) {
	const key1, key2 = "first-key-0123456789", "second-key-0123456789"
	ts := newTestServer(t, func(c *Config) {
		c.APIKeys = []string{key1, key2}
		c.RateLimits.PublishesPerSecond, c.RateLimits.PublishBurst = 1, 3
		c.RateLimits.APICallsPerSecond, c.RateLimits.APICallBurst = 1, 3
	})
	clock := withClock(ts)
	call := func(key, method, path, body string) answer {
		return do(t, method, ts.URL+path, body, "Content-Type", jsonType, "Authorization", "Bearer "+key)
	}
	pub := func(key string) answer {
		return call(key, http.MethodPost, "/api/publish", `{"channel":"news","data":1}`)
	}
	history := func(key string) answer { return call(key, http.MethodGet, "/api/history?channel=news", "") }
	refused := func(a answer, reason string) {
		t.Helper()
		if a.status != 429 || a.header.Get("Retry-After") == "" || !strings.Contains(a.apiErr(t).Reason, reason) {
			t.Fatalf("over the burst: %d %v %s, want 429 %q", a.status, a.header, a.body, reason)
		}
	}
	for i, a := range []answer{
		pub(key1), pub(key1), pub(key1),
		// the calls' bucket is untouched by the publications
		history(key1),
		call(key1, http.MethodGet, "/api/channels", ""),
		call(key1, http.MethodPost, "/api/unsubscribe", `{"user":"bob","channel":"news"}`),
	} {
		if a.status != 200 {
			t.Fatalf("request %d within the bursts: %d %s", i+1, a.status, a.body)
		}
	}
	counter(t, ts, limitPublishes, 2, func() {
		refused(pub(key1), "too many publishes")
		// key2's bucket is its own: a broadcast to 3 channels empties it.
		if a := call(key2, http.MethodPost, "/api/broadcast", `{"channels":["a","b","c"],"data":1}`); a.status != 200 {
			t.Fatalf("broadcast: %d %s", a.status, a.body)
		}
		if a := pub(key2); a.status != 429 {
			t.Fatalf("after a broadcast counted per channel: %d", a.status)
		}
	})
	counter(t, ts, limitAPICalls, 2, func() {
		refused(history(key1), "too many API calls")
		// Refused before the handler: a request it would refuse (no
		// presence in this namespace) is still a 429.
		refused(call(key1, http.MethodGet, "/api/presence?channel=news", ""), "too many API calls")
	})
	if a := history(key2); a.status != 200 {
		t.Fatalf("another key's call: %d %s", a.status, a.body)
	}
	clock.Advance(time.Second)
	if a, b := pub(key1), history(key1); a.status != 200 || b.status != 200 {
		t.Fatalf("after a second: publish %d %s, history %d %s", a.status, a.body, b.status, b.body)
	}
}

// TestOpenAPIHasNoQuota: an open API (no credentials, loopback only) has
// no key to count, so neither per-credential quota applies to it.
func TestOpenAPIHasNoQuota(t *testing.T) {
	open := newTestServer(t, func(c *Config) {
		c.RateLimits.PublishesPerSecond, c.RateLimits.PublishBurst = 1, 1
		c.RateLimits.APICallsPerSecond, c.RateLimits.APICallBurst = 1, 1
	})
	withClock(open)
	for i := range 5 {
		if a := postJSON(t, open.URL+"/api/publish", `{"channel":"news","data":1}`); a.status != 200 {
			t.Fatalf("publish %d: %d %s", i+1, a.status, a.body)
		}
		if a := do(t, http.MethodGet, open.URL+"/api/history?channel=news", ""); a.status != 200 {
			t.Fatalf("history %d: %d %s", i+1, a.status, a.body)
		}
	}
}

// TestBackendPublishesAreNotLimitedByDefault is issue 21 item 5: a backend
// publishing 2,000 a second with its API key got 429s at the old default
// (1,000/s, burst 5,000). With the clock stopped nothing refills, so 6,000
// publications (six broadcasts to 1,000 channels) are past any burst.
func TestBackendPublishesAreNotLimitedByDefault(t *testing.T) {
	const key = "backend-key-0123456789"
	ts := newTestServer(t, func(c *Config) { c.APIKeys = []string{key} })
	withClock(ts)
	chans := make([]string, maxBroadcastChannels)
	for i := range chans {
		chans[i] = strconv.Quote("c" + strconv.Itoa(i))
	}
	body := `{"channels":[` + strings.Join(chans, ",") + `],"data":1}`
	for i := range 6 {
		if a := postJSON(t, ts.URL+"/api/broadcast", body, "Authorization", "Bearer "+key); a.status != 200 {
			t.Fatalf("broadcast %d (publications %d..%d): %d %s", i+1, i*1000+1, (i+1)*1000, a.status, a.body)
		}
	}
}

// pings returns one frame of n ping commands with ids 1..n.
func pings(n int) string {
	cmds := make([]string, n)
	for i := range cmds {
		cmds[i] = `{"type":"ping","id":` + strconv.Itoa(i+1) + `}`
	}
	return strings.Join(cmds, "\n")
}

func TestCommandRate(t *testing.T) {
	// One frame is handled at one instant, so a frame holding more than the
	// burst meets the limit whatever the test's speed.
	const burst = 3
	ts := newTestServer(t, func(c *Config) { c.RateLimits.CommandsPerSecond, c.RateLimits.CommandBurst = 1, burst })
	t.Run("ws: over the burst is answered 429", func(t *testing.T) {
		c, _ := dialWSToken(t, ts.URL, "")
		counter(t, ts, session.LimitCommands, 1, func() {
			f := c.command(burst+1, pings(burst+1))
			if f.Type != "error" || f.Code != 429 {
				t.Fatalf("command over the burst: %+v", f)
			}
		})
	})
	t.Run("sockjs: over the burst is answered 429", func(t *testing.T) {
		c, _ := dialSockJS(t, ts.URL, "")
		if f := c.command(burst+1, pings(burst+1)); f.Type != "error" || f.Code != 429 {
			t.Fatalf("command over the burst: %+v", f)
		}
	})
	t.Run("ws: a client that keeps on is disconnected with 3008", func(t *testing.T) {
		c, _ := dialWSToken(t, ts.URL, "")
		c.Send(pings(2*burst + 1))
		for f := c.next(); f.Type != "disconnect"; f = c.next() {
		}
		c.expectClose(session.DisconnectRateLimited.Code)
	})
}

func TestMessageSizeLimit(t *testing.T) {
	const max = 1024
	ts := newTestServer(t, func(c *Config) {
		c.Limits.MaxMessageBytes = max
		c.Namespaces = []session.Namespace{{Name: "chat", Anonymous: true, ClientPublish: true}}
	})
	big := strings.Repeat("x", 2*max)
	t.Run("ws frame", func(t *testing.T) {
		c, _ := dialWSToken(t, ts.URL, "")
		counter(t, ts, limitMessageSize, 1, func() {
			c.Send(publishCmd(1, "chat:a", big))
			f := c.next()
			if f.Type != "disconnect" || f.Code != session.DisconnectMessageTooLarge.Code {
				t.Fatalf("after an oversized frame: %+v", f)
			}
			c.expectClose(session.DisconnectMessageTooLarge.Code)
			wiretest.Eventually(t, "the session to close", func() bool { return ts.node.SessionCount() == 0 })
		})
	})
	t.Run("sockjs message", func(t *testing.T) {
		c, _ := dialSockJS(t, ts.URL, "")
		counter(t, ts, limitMessageSize, 1, func() {
			c.send(big)
			c.expectClose(session.DisconnectMessageTooLarge.Code)
			wiretest.Eventually(t, "the session to close", func() bool { return ts.node.SessionCount() == 0 })
		})
	})
	t.Run("client publish body", func(t *testing.T) {
		counter(t, ts, limitMessageSize, 1, func() {
			a := postJSON(t, ts.URL+"/connect/publish", `{"channel":"chat:a","data":"`+strings.Repeat("x", max+20<<10)+`"}`)
			if a.status != 413 {
				t.Fatalf("%d %s", a.status, a.body)
			}
		})
	})
	t.Run("api publish data", func(t *testing.T) {
		counter(t, ts, limitMessageSize, 1, func() {
			a := postJSON(t, ts.URL+"/api/publish", `{"channel":"news","data":"`+big+`"}`)
			if a.status != 413 {
				t.Fatalf("%d %s", a.status, a.body)
			}
		})
	})
}

func TestChannelLimits(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Limits.MaxChannels = 2 })
	long := strings.Repeat("x", session.MaxChannelLen+1)
	t.Run("ws", func(t *testing.T) {
		c, _ := dialWSToken(t, ts.URL, "")
		counter(t, ts, session.LimitChannelName, 2, func() {
			for i, ch := range []string{"a b", long} {
				if f := c.command(uint64(i+1), subscribeCmd(uint64(i+1), ch, "")); f.Type != "error" || f.Code != 400 {
					t.Fatalf("subscribe to %.20q: %+v", ch, f)
				}
			}
		})
		counter(t, ts, session.LimitChannels, 1, func() {
			c.command(3, subscribeCmd(3, "a", ""))
			c.command(4, subscribeCmd(4, "b", ""))
			if f := c.command(5, subscribeCmd(5, "c", "")); f.Type != "error" || f.Code != 429 {
				t.Fatalf("third channel: %+v", f)
			}
		})
	})
	for _, tr := range []struct {
		name string
		try  func(q url.Values) outcome
	}{
		{"sse", func(q url.Values) outcome { o, _ := sseOpen(t, ts.URL, q); return o }},
		{"poll", func(q url.Values) outcome { o, _ := pollGet(t, ts.URL, q, ""); return o }},
		{"jsonp", func(q url.Values) outcome { o, _ := pollGet(t, ts.URL, q, "cb"); return o }},
	} {
		t.Run(tr.name, func(t *testing.T) {
			counter(t, ts, session.LimitChannelName, 2, func() {
				for _, ch := range []string{"a b", long} {
					if o := tr.try(url.Values{"channel": {ch}}); o.code != 400 {
						t.Fatalf("channel %.20q: %v", ch, o)
					}
				}
			})
			counter(t, ts, session.LimitChannels, 1, func() {
				if o := tr.try(url.Values{"channel": {"a", "b", "c"}}); o.code != 429 {
					t.Fatalf("three channels: %v", o)
				}
			})
			counter(t, ts, session.LimitChannelName, 0, func() { // other bad input is not a limit
				if o := tr.try(url.Values{"channel": {"a"}, "cursor": {"!!"}}); o.code != 400 {
					t.Fatalf("bad cursor: %v", o)
				}
			})
		})
	}
}

func TestQueuedBytesLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Limits.MaxQueueBytes = 4096 })
	s := subscriber(t, ts.Server, "q") // a client that never reads
	counter(t, ts, limitQueue, 1, func() {
		for range 5 {
			postJSON(t, ts.URL+"/api/publish", `{"channel":"q","data":"`+strings.Repeat("x", 1500)+`"}`)
		}
		if _, err := s.Next(context.Background(), 0, nil); !errors.Is(err, session.DisconnectSlow) {
			t.Fatalf("Next = %v, want %v", err, session.DisconnectSlow)
		}
	})
}

func TestSlowHeadersAreCut(t *testing.T) {
	s := newQuietServer(t)
	s.readHeaderTimeout = 100 * time.Millisecond
	base := startServer(t, s)
	c, err := wiretest.DialRaw(strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Headers that never end.
	if _, err := fmt.Fprint(c, "GET /livez HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, body, err := c.Answer()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept a connection whose headers never ended: %v", err)
	}
	if resp != nil && resp.StatusCode == http.StatusOK {
		t.Fatalf("answered an incomplete request: %s %q", resp.Status, body)
	}
}

// TestCredentialFailuresLimited: API keys and publisher tokens that fail
// are limited per client address, and beyond the limit a credential is
// refused before it is checked; a good token gives its check back, so a
// busy backend is never limited; a good API key passes even from a limited
// address; a request without credentials counts nothing.
func TestCredentialFailuresLimited(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		secure(t)(c)
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	clock := testclock.New(time.Now())
	ts.auth.credFailures = auth.NewKeyedLimiter(credFailRate, credFailBurst, maxLimiterKeys, clock.Now)
	good, err := auth.Mint(auth.MintConfig{Sub: "backend", Kind: auth.KindPublisher, Publish: []string{"*"}, TTL: time.Hour, Key: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := auth.Mint(auth.MintConfig{Sub: "backend", Kind: auth.KindPublisher, Publish: []string{"*"}, TTL: time.Hour, Key: otherSecret})
	if err != nil {
		t.Fatal(err)
	}
	attacker, backend := from("198.51.100.7"), from("203.0.113.9")
	publish := func(cred string, addr []string) answer {
		h := []string{"Content-Type", "application/json"}
		if cred != "" {
			h = append(h, "Authorization", "Bearer "+cred)
		}
		return do(t, http.MethodPost, ts.URL+"/api/publish", `{"channel":"news","data":1}`, append(h, addr...)...)
	}
	for i := range 3 * credFailBurst {
		if a := publish(good, backend); a.status != http.StatusOK {
			t.Fatalf("good token #%d: %d %s", i+1, a.status, a.body)
		}
		if a := publish("", attacker); a.status != http.StatusUnauthorized {
			t.Fatalf("no credential #%d: %d %s, want 401", i+1, a.status, a.body)
		}
	}
	for i := range credFailBurst {
		cred := forged // half made-up tokens, half guessed API keys
		if i%2 == 1 {
			cred = fmt.Sprintf("guess-%016d", i)
		}
		if a := publish(cred, attacker); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong credential #%d: %d %s, want 401", i+1, a.status, a.body)
		}
	}
	for _, cred := range []string{forged, "guess-the-key-0123456789", good} {
		a := publish(cred, attacker)
		if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
			t.Fatalf("a credential after %d failures: %d %s, want 429 with Retry-After", credFailBurst, a.status, a.body)
		}
		if e := a.apiErr(t); !strings.Contains(e.Reason, "failed verification") {
			t.Errorf("reason %q", e.Reason)
		}
	}
	if a := publish(testAPIKey, attacker); a.status != http.StatusOK {
		t.Errorf("API key from the limited address: %d %s, want 200", a.status, a.body)
	}
	if a := publish(good, backend); a.status != http.StatusOK {
		t.Errorf("good token from another address: %d %s", a.status, a.body)
	}
	clock.Advance(time.Second / credFailRate)
	if a := publish(good, attacker); a.status != http.StatusOK {
		t.Errorf("good token once the address earned a check: %d %s", a.status, a.body)
	}
	if got := limited(t, ts, limitCredFailures); got != 3 {
		t.Errorf("waterspout_limited_total{limit=%q} = %d, want 3", limitCredFailures, got)
	}
}
