package sockjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

var allTransports = []string{viaWebsocket, viaXHRStreaming, viaXHRPolling}

func TestInfo(t *testing.T) {
	tests := []struct {
		name   string
		sticky bool
	}{
		{"default", false},
		{"sticky cookie", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envConfig{Options: Options{StickyCookie: tt.sticky}})
			r := wiretest.Request(t, nil, http.MethodGet, e.base+"/info", "", nil)
			var info struct {
				Websocket    bool `json:"websocket"`
				CookieNeeded bool `json:"cookie_needed"`
			}
			if err := json.Unmarshal([]byte(r.Body), &info); err != nil {
				t.Fatal(err)
			}
			if r.Status != http.StatusOK || !info.Websocket {
				t.Fatalf("status %d, info %+v: want 200 with websocket true", r.Status, info)
			}
			if info.CookieNeeded != tt.sticky {
				t.Errorf("cookie_needed %v, want %v", info.CookieNeeded, tt.sticky)
			}
			cookie := strings.Contains(r.Header.Get("Set-Cookie"), "JSESSIONID")
			if cookie != tt.sticky {
				t.Errorf("Set-Cookie %q: JSESSIONID set %v, want %v", r.Header.Get("Set-Cookie"), cookie, tt.sticky)
			}
		})
	}
}

// The iframe page runs with the server's origin: it must load the client the
// server serves, never a CDN's.
func TestIframeLoadsSelfHostedClient(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"default", "", `src="/client/sockjs.min.js"`},
		{"configured", "/static/sockjs-1.6.1.min.js", `src="/static/sockjs-1.6.1.min.js"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envConfig{Options: Options{SockJSURL: tt.url}})
			body := wiretest.Request(t, nil, http.MethodGet, e.base+"/iframe.html", "", nil).Body
			if !strings.Contains(body, tt.want) || strings.Contains(body, "cdn") {
				t.Fatalf("iframe page does not load %s only:\n%s", tt.want, body)
			}
		})
	}
}

func TestOriginCheck(t *testing.T) {
	e := newEnv(t, envConfig{})
	sess := wiretest.SockJSSession(e.base)
	requests := []struct {
		name, method, url string
		websocket         bool
	}{
		{"info", http.MethodGet, e.base + "/info", false},
		{"info preflight", http.MethodOptions, e.base + "/info", false},
		{"xhr", http.MethodPost, sess + "/xhr", false},
		{"xhr_streaming", http.MethodPost, sess + "/xhr_streaming", false},
		{"xhr_send", http.MethodPost, sess + "/xhr_send", false},
		{"jsonp", http.MethodGet, sess + "/jsonp?c=cb", false},
		{"htmlfile", http.MethodGet, sess + "/htmlfile?c=cb", false},
		{"eventsource", http.MethodGet, sess + "/eventsource", false},
		{"iframe", http.MethodGet, e.base + "/iframe.html", false},
		{"websocket", http.MethodGet, sess + "/websocket", true},
	}
	for _, rq := range requests {
		t.Run(rq.name, func(t *testing.T) {
			if rq.websocket {
				u := "ws" + strings.TrimPrefix(rq.url, "http")
				_, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"http://evil.example"}})
				if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("cross-origin websocket: err %v, response %v: want 403", err, resp)
				}
				body, _ := io.ReadAll(resp.Body)
				assertErrorBody(t, string(body), http.StatusForbidden)
				return
			}
			r := wiretest.Request(t, nil, rq.method, rq.url, `["{}"]`, http.Header{"Origin": {"http://evil.example"}})
			if r.Status != http.StatusForbidden {
				t.Fatalf("status %d, want 403", r.Status)
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("refused request allows origin %q", got)
			}
			assertErrorBody(t, r.Body, http.StatusForbidden)
		})
	}
	if n := e.Node.SessionCount(); n != 0 {
		t.Errorf("refused requests opened %d sessions", n)
	}

	t.Run("allowed origin", func(t *testing.T) {
		r := wiretest.Request(t, nil, http.MethodGet, e.base+"/info", "", http.Header{"Origin": {wiretest.AllowedOrigin}})
		if r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != wiretest.AllowedOrigin {
			t.Fatalf("status %d, Access-Control-Allow-Origin %q: want 200 and %s",
				r.Status, r.Header.Get("Access-Control-Allow-Origin"), wiretest.AllowedOrigin)
		}
	})
}

func assertErrorBody(t *testing.T, body string, code int) {
	t.Helper()
	var v struct {
		Error session.Error `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Error.Code != code || v.Error.Reason == "" {
		t.Fatalf("error body %q (%v), want code %d with a reason", body, err, code)
	}
}

// xhrSend sends cmds to the session at sess in one xhr_send, each command
// one SockJS message, and checks that it was taken.
func xhrSend(t *testing.T, sess string, cmds ...string) {
	t.Helper()
	p, _ := json.Marshal(cmds)
	if r := wiretest.Request(t, nil, http.MethodPost, sess+"/xhr_send", string(p), http.Header{"Content-Type": {"text/plain"}}); r.Status != http.StatusNoContent {
		t.Fatalf("xhr_send: status %d %s", r.Status, r.Body)
	}
}

func TestSubscribeAndReceive(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			c := dial(t, e, tr, "")
			hello := c.expect("hello")
			if hello.Transport != Transport || hello.Session == "" || hello.Ping != 25 || hello.Limits == nil {
				t.Fatalf("hello %+v", hello)
			}
			sub := c.subscribe(1, "news", nil)
			if sub.Recovered != nil {
				t.Errorf("fresh subscribe has recovered=%v", *sub.Recovered)
			}
			publish(t, e.Node, "news", `{"text":"hi"}`)
			m := c.expect("message")
			if m.Channel != "news" || m.Offset != sub.Offset+1 || m.Epoch != sub.Epoch || string(m.Data) != `{"text":"hi"}` {
				t.Fatalf("message %+v after subscribed %+v", m, sub)
			}
			// The rest of the command set works as on WebSocket.
			c.command(`{"type":"ping","id":7}`)
			if r := c.expect("reply"); r.ID != 7 {
				t.Fatalf("reply %+v, want id 7", r)
			}
		})
	}
}

// A numbered stream arrives in order, exactly once, however the writer
// batched it into SockJS messages. It is larger than sockjs-go's streaming
// response limit (128 KiB), so xhr_streaming goes through several requests.
func TestNumberedStream(t *testing.T) {
	const total = 500
	pad := strings.Repeat("p", 400)
	for _, tr := range allTransports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			c := dial(t, e, tr, "")
			c.expect("hello")
			c.subscribe(1, "seq", nil)
			for i := 1; i <= total; i++ {
				publish(t, e.Node, "seq", fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad))
			}
			for want := 1; want <= total; want++ {
				m := c.expect("message")
				var got struct{ N int }
				if err := json.Unmarshal(m.Data, &got); err != nil || got.N != want {
					t.Fatalf("message %.40s, want n=%d", m.Data, want)
				}
			}
		})
	}
}

// Resuming with `since` replays what the client missed, exactly once, and
// then continues live. The replay is queued at once, so it arrives as SockJS
// messages that each carry several frames.
func TestResume(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			res := publish(t, e.Node, "orders", numbers(1, 300)...)
			c := dial(t, e, tr, "")
			c.expect("hello")
			sub := c.subscribe(1, "orders", &session.Position{Epoch: res.Epoch, Offset: 100})
			if sub.Recovered == nil || !*sub.Recovered || sub.Offset != 100 {
				t.Fatalf("subscribed %+v, want recovered true at offset 100", sub)
			}
			batched := false
			perMsg := map[int]int{}
			for want := 101; want <= 300; want++ {
				m, msg := c.frame()
				if m.Type != "message" || string(m.Data) != fmt.Sprint(want) {
					t.Fatalf("frame %+v, want message %d", m, want)
				}
				perMsg[msg]++
				batched = batched || perMsg[msg] > 1
			}
			if !batched {
				t.Error("the replay came one frame per SockJS message; want batches split on \\n")
			}
			publish(t, e.Node, "orders", "301")
			if m := c.expect("message"); string(m.Data) != "301" || m.Offset != 301 {
				t.Fatalf("live message %+v, want 301", m)
			}
		})
	}
}

func TestBadCommands(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		id   uint64
	}{
		{"not JSON", `not json`, 0},
		{"truncated", `{"type":"subscribe"`, 0},
		{"no type", `{"id":3}`, 0},
		{"unknown type", `{"type":"launch","id":4}`, 4},
		{"bad channel", `{"type":"subscribe","id":5,"channel":"no spaces"}`, 5},
	}
	for _, tr := range []string{viaWebsocket, viaXHRStreaming} {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			c := dial(t, e, tr, "")
			c.expect("hello")
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c.T = t
					c.command(tt.cmd)
					f := c.expect("error")
					if f.Code != 400 || f.ID != tt.id || f.Reason == "" {
						t.Fatalf("error frame %+v, want code 400 id %d", f, tt.id)
					}
				})
			}
			c.T = t
			// The session is still usable.
			c.subscribe(9, "news", nil)
			publish(t, e.Node, "news", `"still here"`)
			if m := c.expect("message"); string(m.Data) != `"still here"` {
				t.Fatalf("message %+v", m)
			}
		})
	}
}

func TestOversizedMessage(t *testing.T) {
	limits := session.Limits{MaxMessageBytes: 1024}
	big := `{"type":"publish","id":1,"channel":"news","data":"` + strings.Repeat("x", 2000) + `"}`
	huge := strings.Repeat("y", int(frameLimit(limits.MaxMessageBytes))+1)

	command := func(cmd string) func(*client) { return func(c *client) { c.command(cmd) } }
	for _, tc := range []struct {
		name, transport string
		send            func(*client)
	}{
		{"over maxMessageBytes/websocket", viaWebsocket, command(big)},
		{"over maxMessageBytes/xhr_streaming", viaXHRStreaming, command(big)},
		{"websocket message over the read limit", viaWebsocket, command(huge)},
		// The limit acts on the frame header: a client announcing a 1 GiB
		// message is stopped before the server reads (or waits for) any of it.
		{"websocket frame header over the read limit", viaWebsocket, func(c *client) {
			hdr := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4}
			if _, err := c.Raw.Write(append(hdr, "[\"x"...)); err != nil {
				c.T.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{Node: session.Config{Limits: limits}})
			c := dial(t, e, tc.transport, "")
			c.expect("hello")
			tc.send(c)
			c.expectDisconnect(3501, "message too large")
		})
	}

	for _, send := range []string{"xhr_send", "jsonp_send"} {
		t.Run(send+" body over the limit", func(t *testing.T) {
			e := newEnv(t, envConfig{Node: session.Config{Limits: limits}})
			c := dial(t, e, viaXHRStreaming, "")
			c.expect("hello")
			// Well-formed SockJS bodies: only their size is wrong.
			body := `["` + huge + `"]`
			if send == "jsonp_send" {
				body = "d=" + url.QueryEscape(`["`+strings.Repeat("y", 3*int(frameLimit(limits.MaxMessageBytes)))+`"]`)
			}
			r := wiretest.Request(t, nil, http.MethodPost, c.URL+"/"+send, body, http.Header{
				"Content-Type": {"application/x-www-form-urlencoded"},
				"Origin":       {wiretest.AllowedOrigin},
			})
			if r.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413", r.Status)
			}
			if r.Header.Get("Access-Control-Allow-Origin") != wiretest.AllowedOrigin {
				t.Error("the 413 answer cannot be read by the allowed page")
			}
			assertErrorBody(t, r.Body, http.StatusRequestEntityTooLarge)
			c.expectDisconnect(3501, "message too large")
		})
	}
}

// A client that stops reading its xhr_streaming response costs only its own
// session: the writes to it hit their deadline or its queue overflows, its
// session ends, and a healthy subscriber of the same channel gets every
// message meanwhile.
func TestStalledXHRStreaming(t *testing.T) {
	e := newEnv(t, envConfig{
		Node:      session.Config{Limits: session.Limits{MaxQueueBytes: 256 << 10}},
		Transport: transports.Config{WriteTimeout: 300 * time.Millisecond},
		Server:    wiretest.SmallSendBuffers(8 << 10),
	})
	healthy := dial(t, e, viaWebsocket, "")
	healthy.expect("hello")
	healthy.subscribe(1, "firehose", nil)

	stalled := openStalledStream(t, e)
	xhrSend(t, stalled, `{"type":"subscribe","id":1,"channel":"firehose"}`)

	pad := strings.Repeat("p", 16<<10)
	sent := 0
	// Publish one message at a time and wait for the healthy client to get
	// it, so its own queue never holds more than one; the stalled session's
	// socket and queue fill until it is dropped.
	for e.Node.SessionCount() > 1 {
		sent++
		if sent > 5000 {
			t.Fatal("the stalled session was never dropped")
		}
		publish(t, e.Node, "firehose", fmt.Sprintf(`{"n":%d,"pad":%q}`, sent, pad))
		m := healthy.expect("message")
		var got struct{ N int }
		if err := json.Unmarshal(m.Data, &got); err != nil || got.N != sent {
			t.Fatalf("healthy client got %s, want n=%d", m.Data[:min(len(m.Data), 40)], sent)
		}
	}
	if n := e.Metrics.ClosedWith(session.DisconnectSlow.Code, session.DisconnectWriteTimeout.Code); n != 1 {
		t.Fatalf("%d sessions closed as slow or timed out, want the stalled one", n)
	}
	publish(t, e.Node, "firehose", `{"n":-1}`)
	if m := healthy.expect("message"); string(m.Data) != `{"n":-1}` {
		t.Fatalf("healthy client got %s after the drop", m.Data)
	}
}

func TestShutdown(t *testing.T) {
	for _, tr := range []string{viaWebsocket, viaXHRStreaming} {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			c := dial(t, e, tr, "")
			c.expect("hello")
			c.subscribe(1, "news", nil)
			ctx, cancel := context.WithTimeout(context.Background(), wiretest.WaitLimit)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- e.Node.Shutdown(ctx) }()
			c.expectDisconnect(3001, "shutdown")
			if err := <-done; err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			if _, err := e.Node.NewSession("probe"); !errors.Is(err, session.DisconnectShutdown) {
				t.Fatalf("node still opens sessions: %v", err)
			}
		})
	}

	t.Run("new session while shutting down", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		if err := e.Node.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		c := dial(t, e, viaWebsocket, "")
		c.expectDisconnect(3001, "shutdown")
	})

	t.Run("server context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e := newEnv(t, envConfig{Transport: transports.Config{Context: ctx}})
		c := dial(t, e, viaWebsocket, "")
		c.expect("hello")
		cancel()
		c.expectDisconnect(3001, "shutdown")
		e.WaitSessions(t, 0)
	})
}

func TestAuthenticate(t *testing.T) {
	type seen struct {
		token, cookie string
	}
	var got atomic.Pointer[seen]
	auth := func(r *http.Request, s *session.Session) error {
		got.Store(&seen{r.URL.Query().Get("token"), r.Header.Get("Cookie")})
		switch r.URL.Query().Get("token") {
		case "good":
			s.SetUser("u1")
			return nil
		case "panic":
			panic("authenticator bug")
		case "broken":
			return errors.New("key service down")
		}
		return session.DisconnectInvalidToken
	}
	tests := []struct {
		name, query string
		called      bool
		code        int
		reason      string
		wantSession bool
	}{
		{name: "no token is anonymous", query: "", called: false, wantSession: true},
		{name: "good token", query: "token=good", called: true, wantSession: true},
		{name: "refused token", query: "token=bad", called: true, code: 3502, reason: "invalid token"},
		{name: "failing authenticator", query: "token=broken", called: true, code: 3006, reason: "internal error"},
		{name: "panicking authenticator", query: "token=panic", called: true, code: 3006, reason: "internal error"},
	}
	for _, tr := range []string{viaWebsocket, viaXHRStreaming} {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, envConfig{Transport: transports.Config{Authenticate: auth}})
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got.Store(nil)
					c := dial(t, e, tr, tt.query)
					if tt.wantSession {
						c.expect("hello")
					} else {
						// Refused before hello: the disconnect frame comes first.
						if f := c.expect("disconnect"); f.Code != tt.code || f.Reason != tt.reason {
							t.Fatalf("disconnect %+v, want %d %q", f, tt.code, tt.reason)
						}
						c.expectClose(tt.code, tt.reason)
					}
					s := got.Load()
					if (s != nil) != tt.called {
						t.Fatalf("Authenticate called: %v, want %v", s != nil, tt.called)
					}
					if s != nil && s.cookie != "" {
						t.Errorf("Authenticate saw cookies %q", s.cookie)
					}
				})
			}
			// The handler still serves after a panic.
			c := dial(t, e, tr, "")
			c.expect("hello")
			c.subscribe(1, "news", nil)
		})
	}
}

// Idle sessions get a ping frame every ping interval.
func TestIdlePing(t *testing.T) {
	e := newEnv(t, envConfig{Node: session.Config{Ping: time.Second}})
	c := dial(t, e, viaWebsocket, "")
	if h := c.expect("hello"); h.Ping != 1 {
		t.Fatalf("hello announces ping %d, want 1", h.Ping)
	}
	ev := c.Next()
	if ev.Err != nil || ev.Frame.Type != "ping" {
		t.Fatalf("got %+v, want a ping frame", ev)
	}
}

// Messages reach the session even when it has nothing to send back, and
// xhr_send returns at once: the bridge always runs a Recv loop.
func TestSendsDoNotHang(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := dial(t, e, viaXHRPolling, "")
	c.expect("hello")
	for i := range 20 {
		xhrSend(t, c.URL, fmt.Sprintf(`{"type":"unsubscribe","id":%d,"channel":"c%d"}`, i+1, i))
	}
	for i := range 20 {
		if f := c.expect("error"); f.ID != uint64(i+1) || f.Code != 404 {
			t.Fatalf("error frame %+v, want 404 for id %d", f, i+1)
		}
	}
}

// sockjs-go buffers what Session.Send is given while no request is there to
// take it, without bound. A polling client that stops polling must instead
// overflow its own bounded queue and be dropped as a slow consumer.
func TestPollerThatStopsPollingIsSlow(t *testing.T) {
	e := newEnv(t, envConfig{
		Node:    session.Config{Limits: session.Limits{MaxQueueBytes: 64 << 10}},
		Options: Options{DisconnectDelay: 2 * time.Second}, // not the delay: the queue ends it
	})
	sess := wiretest.SockJSSession(e.base)
	poll := func() string {
		t.Helper()
		for {
			body := wiretest.Request(t, nil, http.MethodPost, sess+"/xhr", "", nil).Body
			if body != wiretest.SockJSAnotherConnection { // see wiretest.SockJSClient
				return body
			}
		}
	}
	if got := poll(); got != "o\n" {
		t.Fatalf("first poll %q, want the open frame", got)
	}
	if got := poll(); !strings.Contains(got, `\"type\":\"hello\"`) {
		t.Fatalf("second poll %q, want hello", got)
	}
	xhrSend(t, sess, `{"type":"subscribe","id":1,"channel":"news"}`)
	if got := poll(); !strings.Contains(got, `\"type\":\"subscribed\"`) {
		t.Fatalf("third poll %q, want subscribed", got)
	}
	const total = 200 // 200 KiB for a 64 KiB queue
	pad := strings.Repeat("p", 1024)
	for i := range total {
		publish(t, e.Node, "news", fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad))
	}
	// The writer may have handed sockjs-go one batch before the poll that
	// carried `subscribed` ended; nothing more.
	delivered := 0
	for {
		got := poll()
		if strings.HasPrefix(got, "c[") {
			t.Fatalf("close frame %q before the disconnect frame", got)
		}
		delivered += strings.Count(got, `\"type\":\"message\"`)
		if strings.Contains(got, `\"type\":\"disconnect\",\"code\":3002`) {
			break
		}
		if delivered >= total {
			t.Fatalf("all %d messages were buffered for a client that did not poll", total)
		}
	}
	if got := poll(); got != "c[3002,\"slow consumer\"]\n" {
		t.Fatalf("last poll %q, want the close frame", got)
	}
	eventually(t, "the session to close", func() bool { return e.Metrics.ClosedWith(3002) == 1 })
}

// TestSendsMustBeUTF8: an xhr_send or jsonp_send whose messages are not
// valid UTF-8, or carry a \u escape of a lone surrogate, is refused 400
// before sockjs-go decodes it (which would turn both into U+FFFD, so that
// the commands inside passed the UTF-8 check and two different invalid
// idempotency keys became one), and the session goes on: the next command
// is answered, the refused one never is.
func TestSendsMustBeUTF8(t *testing.T) {
	bad := []struct{ name, body string }{
		{"lone high surrogate escape", `["{\"type\":\"ping\",\"id\":1,\"key\":\"k\ud800\"}"]`},
		{"lone low surrogate escape", `["{\"type\":\"ping\",\"id\":1,\"key\":\"k\udc00\"}"]`},
		{"invalid byte", "[\"{\\\"type\\\":\\\"ping\\\",\\\"id\\\":1,\\\"key\\\":\\\"k\xff\\\"}\"]"},
	}
	for _, send := range []string{"xhr_send", "jsonp_send"} {
		for _, tc := range bad {
			t.Run(send+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t, envConfig{})
				c := dial(t, e, viaXHRStreaming, "")
				c.expect("hello")
				body, ct := tc.body, "text/plain"
				if send == "jsonp_send" {
					body, ct = "d="+url.QueryEscape(tc.body), "application/x-www-form-urlencoded"
				}
				r := wiretest.Request(t, nil, http.MethodPost, c.URL+"/"+send, body, http.Header{
					"Content-Type": {ct}, "Origin": {wiretest.AllowedOrigin},
				})
				if r.Status != http.StatusBadRequest {
					t.Fatalf("status %d %s, want 400", r.Status, r.Body)
				}
				if r.Header.Get("Access-Control-Allow-Origin") != wiretest.AllowedOrigin {
					t.Error("the 400 answer cannot be read by the allowed page")
				}
				assertErrorBody(t, r.Body, http.StatusBadRequest)
				xhrSend(t, c.URL, `{"type":"ping","id":2}`)
				if f := c.expect("reply"); f.ID != 2 {
					t.Fatalf("reply %+v: the refused command was run", f)
				}
			})
		}
	}
	t.Run("valid text still passes", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		c := dial(t, e, viaXHRStreaming, "")
		c.expect("hello")
		xhrSend(t, c.URL, `{"type":"ping","id":3,"key":"k\ud83d\ude00 é \ufffd"}`)
		if f := c.expect("reply"); f.ID != 3 {
			t.Fatalf("reply %+v", f)
		}
	})
}

// TestSessionIDIsNoCredential: the session id in a SockJS URL, chosen by the
// client and carried in the path (which proxies log), does not open the
// session to whoever learns it. Requests naming a session opened with a
// token must carry the same token; others are refused 403 before sockjs-go,
// and neither receive the session's frames nor run commands in it. Found
// 2026-12-07: a request with no token, from anywhere, read the private
// messages of a session opened with one and could send commands as it.
func TestSessionIDIsNoCredential(t *testing.T) {
	auth := func(r *http.Request, s *session.Session) error {
		if r.URL.Query().Get("token") == "good" {
			s.SetUser("u1")
			return nil
		}
		return session.DisconnectInvalidToken
	}
	e := newEnv(t, envConfig{Transport: transports.Config{Authenticate: auth}})
	victim := dial(t, e, viaXHRStreaming, "token=good")
	victim.expect("hello")
	victim.subscribe(1, "news", nil)

	ping := `["{\"type\":\"ping\",\"id\":99}"]`
	for _, q := range []string{"", "?token=other"} {
		for _, req := range []struct{ path, body string }{{"/xhr", ""}, {"/xhr_send", ping}, {"/jsonp_send", "d=" + url.QueryEscape(ping)}} {
			ct := "text/plain"
			if req.path == "/jsonp_send" {
				ct = "application/x-www-form-urlencoded"
			}
			r := wiretest.Request(t, nil, http.MethodPost, victim.URL+req.path+q, req.body, http.Header{"Content-Type": {ct}})
			if r.Status != http.StatusForbidden {
				t.Fatalf("%s%s by a stranger: status %d %q, want 403", req.path, q, r.Status, r.Body)
			}
			assertErrorBody(t, r.Body, http.StatusForbidden)
		}
	}
	publish(t, e.Node, "news", `"private"`)
	if m := victim.expect("message"); string(m.Data) != `"private"` {
		t.Fatalf("message %+v", m)
	}
	victim.command(`{"type":"ping","id":2}`)
	if f := victim.expect("reply"); f.ID != 2 {
		t.Fatalf("reply %+v: a stranger's command ran in the session", f)
	}
}

// TestWebsocketMessagesMustBeUTF8: over SockJS's WebSocket, a message that is
// not valid UTF-8 JSON text (an invalid byte, a \u escape of a lone
// surrogate) is answered with the 400 error frame a WebSocket client gets,
// in its place among the answers, and none of its commands runs; sockjs-go
// would have decoded it to U+FFFD, so that keys "k\ud800" and "k\ud801"
// published once. The messages around it, fragmented or not, are answered
// as before, and the session goes on.
func TestWebsocketMessagesMustBeUTF8(t *testing.T) {
	e := newEnv(t, envConfig{Node: session.Config{Namespaces: []session.Namespace{
		{Name: "chat", ClientPublish: true, Anonymous: true, HistorySize: 100, HistoryTTL: time.Minute},
	}}})
	c := dial(t, e, viaWebsocket, "")
	c.expect("hello")
	publish := func(id int, key string) string {
		return fmt.Sprintf(`["{\"type\":\"publish\",\"id\":%d,\"channel\":\"chat:a\",\"data\":%d,\"key\":\"%s\"}"]`, id, id, key)
	}
	send := func(msg string) {
		t.Helper()
		if err := c.Send([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	expectRefused := func() {
		t.Helper()
		f := c.expect("error")
		if f.Code != http.StatusBadRequest || f.ID != 0 || !strings.Contains(f.Reason, "UTF-8") {
			t.Fatalf("error %+v, want 400 naming UTF-8", f)
		}
	}
	expectPublished := func(id int, offset uint64) {
		t.Helper()
		if f := c.expect("reply"); f.ID != uint64(id) || f.Offset != offset {
			t.Fatalf("reply %+v, want id %d at offset %d", f, id, offset)
		}
	}

	send(publish(1, "good"))
	send(publish(2, `k\ud800`))
	send(publish(3, `k\ud801`))
	send(publish(4, `k\udc00`))
	send(publish(5, "k\xff"))
	send(publish(6, `k\ud83d\ude00`)) // a surrogate pair is fine
	expectPublished(1, 1)
	for range 4 {
		expectRefused()
	}
	expectPublished(6, 2)

	// Fragmented, with a ping between the fragments, written raw.
	write := func(frames ...[]byte) {
		t.Helper()
		if _, err := c.Raw.Write(cat(frames...)); err != nil {
			t.Fatal(err)
		}
	}
	bad, good := publish(7, `k\ud800`), publish(8, "k")
	write(wire.ClientFrame(1, false, []byte(bad[:20])), wire.ClientFrame(9, true, nil), wire.ClientFrame(0, true, []byte(bad[20:])))
	write(wire.ClientFrame(1, false, []byte(good[:20])), wire.ClientFrame(9, true, nil), wire.ClientFrame(0, true, []byte(good[20:])))
	expectRefused()
	expectPublished(8, 3)

	res, err := e.Node.History(context.Background(), "chat:a", nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Publications) != 3 {
		t.Fatalf("history holds %d publications, want 3 (ids 1, 6, 8)", len(res.Publications))
	}
}

// TestWebsocketSessionNotReachableByID: what docs/SECURITY.md relies on
// when it leaves sessions opened without a token unbound: a SockJS session
// over WebSocket cannot be reached by its id at all (sockjs-go never
// registers it under its id), so a stranger who learned the path of a
// tokenless one sends nothing to it and receives nothing of it.
func TestWebsocketSessionNotReachableByID(t *testing.T) {
	e := newEnv(t, envConfig{})
	victim := dial(t, e, viaWebsocket, "")
	victim.expect("hello")
	victim.subscribe(1, "news", nil)

	r := wiretest.Request(t, nil, http.MethodPost, victim.URL+"/xhr_send", `["{\"type\":\"unsubscribe\",\"id\":9,\"channel\":\"news\"}"]`, http.Header{"Content-Type": {"text/plain"}})
	if r.Status != http.StatusNotFound {
		t.Fatalf("xhr_send naming a websocket session: status %d %q, want 404", r.Status, r.Body)
	}
	r = wiretest.Request(t, nil, http.MethodPost, victim.URL+"/xhr", "", nil)
	if r.Status != http.StatusOK || r.Body != "o\n" {
		t.Fatalf("xhr naming a websocket session: status %d %q, want a new session's open frame", r.Status, r.Body)
	}
	publish(t, e.Node, "news", `"mine"`)
	if m := victim.expect("message"); string(m.Data) != `"mine"` {
		t.Fatalf("message %+v", m)
	}
}
