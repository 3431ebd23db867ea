package server

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
)

// TestUnreadBodiesAreBounded: a request that announces a body and never
// sends it is answered and its connection closed within the server's
// bounds, on every route. Found 2026-12-07 by the attack pass: net/http
// reads whatever body a handler left unread (up to 256 KB) before it
// writes the answer, and the server has no overall read timeout (streams
// last hours), so `GET /livez` with `Content-Length: 100` and no body got
// no answer and held its connection and goroutine for as long as the
// client liked: 3,000 such requests from one address held 3,011 fds and
// 69 MB, uncounted by any per-address limit (outside /connect/* there is
// none, and on /connect/* the slot is given back when the handler returns).
func TestUnreadBodiesAreBounded(t *testing.T) {
	cfg := quietConfig()
	cfg.PollTimeout = time.Second
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.requestTimeout, s.readHeaderTimeout = 300*time.Millisecond, 300*time.Millisecond
	base := startServer(t, s)
	addr := strings.TrimPrefix(base, "http://")

	for _, path := range []string{
		"/livez", "/readyz", "/metrics", "/", "/client/waterspout.js", "/api/openapi.json",
		"/api/publish",  // GET: 405, before any middleware of the route
		"/api/history",  // 401: no credential
		"/nope",         // 404
		"/connect/nope", // 404 under the transports' prefix
		"/connect/poll?channel=news", "/connect/ws", "/connect/sockjs/info",
	} {
		t.Run(path, func(t *testing.T) {
			c, err := wiretest.DialRaw(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\n", path, addr); err != nil {
				t.Fatal(err)
			}
			resp, _, err := c.Answer() // the connection's deadline is wiretest.WaitLimit
			if err != nil {
				t.Fatalf("no answer while the body is missing: %v", err)
			}
			if !resp.Close {
				t.Errorf("answered %d without Connection: close: the missing body would be read as the next request", resp.StatusCode)
			}
			if n, err := c.Reader().Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("the connection stays open after the answer (%d, %v)", n, err)
			}
		})
	}
}

// TestRequestTimeoutSparesStreamsAndKeepAlive: the deadline that bounds
// ordinary requests does not reach what lasts longer or comes later: an
// SSE stream and a held poll outlive it, and a keep-alive connection serves
// requests after it passed.
func TestRequestTimeoutSparesStreamsAndKeepAlive(t *testing.T) {
	cfg := quietConfig()
	cfg.PollTimeout, cfg.PollDetach = 5*time.Second, time.Minute // held on net/http's goroutine
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.requestTimeout = 200 * time.Millisecond
	base := startServer(t, s)

	stream := openSSEStream(t, base, url.Values{"channel": {"news"}})
	c, err := wiretest.DialRaw(strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
			t.Fatal(err)
		}
		resp, body, err := c.Answer()
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp, body
	}
	if resp, _ := get("/livez"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("/livez: %d, close %v", resp.StatusCode, resp.Close)
	}
	time.Sleep(2 * s.requestTimeout) // the first request's deadline has passed
	q := url.Values{"channel": {"news"}}
	_, first := get("/connect/poll?" + q.Encode())
	ans, err := wire.DecodePoll([]byte(first), "")
	if err != nil || ans.Cursor == nil {
		t.Fatalf("first poll: %q (%v)", first, err)
	}
	cursor := *ans.Cursor
	// Polls held on the same connection, as GET and as POST (whose body is
	// read whole before the hold: its read deadline is taken off then),
	// still wait well after the request deadline has passed, and answer
	// with what is published then. A deadline that passed during the hold
	// would have cut it (an empty answer at once) or made net/http take the
	// client for gone.
	for i, method := range []string{http.MethodGet, http.MethodPost} {
		q.Set("cursor", cursor)
		if method == http.MethodGet {
			_, err = fmt.Fprintf(c, "GET /connect/poll?%s HTTP/1.1\r\nHost: x\r\n\r\n", q.Encode())
		} else {
			form := q.Encode()
			_, err = fmt.Fprintf(c, "POST /connect/poll HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(form), form)
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * s.requestTimeout)
		data := fmt.Sprintf(`"held %d"`, i)
		if a := postJSON(t, base+"/api/publish", `{"channel":"news","data":`+data+`}`); a.status != 200 {
			t.Fatalf("publish: %d %s", a.status, a.body)
		}
		resp, body, err := c.Answer()
		if err != nil {
			t.Fatalf("held %s poll: %v", method, err)
		}
		held, err := wire.DecodePoll([]byte(body), "")
		if resp.StatusCode != 200 || resp.Close || err != nil || len(held.Messages) != 1 || string(held.Messages[0].Data) != data || held.Cursor == nil {
			t.Fatalf("held %s poll: %d (close %v) %q (%v), want the message %s", method, resp.StatusCode, resp.Close, body, err, data)
		}
		cursor = *held.Cursor
	}
	if resp, _ := get("/livez"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("/livez after the held polls: %d, close %v", resp.StatusCode, resp.Close)
	}
	if a := postJSON(t, base+"/api/publish", `{"channel":"news","data":"late"}`); a.status != 200 {
		t.Fatalf("publish: %d %s", a.status, a.body)
	}
	for f := stream.next(); string(f.Data) != `"late"`; f = stream.next() {
		if f.Type == "disconnect" {
			t.Fatalf("the stream ended: %+v", f)
		}
	}
}
