package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
)

// Clients of every transport, speaking the wire protocol as a browser or a
// third-party client would, for the security tests. Each returns what the
// client saw as an outcome, so one table can run against all of them.

// outcome is what a client saw when it tried to connect, subscribe or publish.
type outcome struct {
	ok bool
	// code is the refusal's code: the HTTP status or error-frame code of a
	// refused request or command, or the disconnect code of a connection
	// refused after its WebSocket upgrade.
	code   int
	reason string
}

func (o outcome) String() string {
	if o.ok {
		return "ok"
	}
	return fmt.Sprintf("%d %q", o.code, o.reason)
}

func wsURL(base, path string) string { return "ws" + strings.TrimPrefix(base, "http") + path }

// withToken appends token=… to a query when tok is set.
func withToken(q url.Values, tok string) url.Values {
	if tok != "" {
		q.Set("token", tok)
	}
	return q
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// errorOf decodes an {"error":{…}} body; another body gives zeros.
func errorOf(body []byte) (code int, reason string) {
	var eb errorBody
	_ = json.Unmarshal(body, &eb)
	return eb.Error.Code, eb.Error.Reason
}

// --- WebSocket

// dialWSToken connects to /connect/ws with tok in the query. A refusal
// before the upgrade is its HTTP status; after it, the disconnect frame,
// whose code must match the close frame's.
func dialWSToken(t *testing.T, base, tok string, headers ...string) (*wsClient, outcome) {
	t.Helper()
	conn, refused := dialRefusable(t, wsURL(base, "/connect/ws"), tok, headers...)
	if conn == nil {
		return nil, refused
	}
	c := &wsClient{WSClient: wiretest.NewWSClient(t, conn), t: t}
	f := c.next()
	switch f.Type {
	case "hello":
		return c, outcome{ok: true}
	case "disconnect":
		c.expectClose(f.Code)
		return nil, outcome{code: f.Code, reason: f.Reason}
	}
	t.Fatalf("first frame %+v", f)
	return nil, outcome{}
}

// dialRefusable opens a WebSocket to u, with tok in the query when set. A
// refusal before the upgrade is returned as its outcome, with a nil conn.
func dialRefusable(t *testing.T, u, tok string, headers ...string) (*websocket.Conn, outcome) {
	t.Helper()
	if q := withToken(url.Values{}, tok); len(q) > 0 {
		u += "?" + q.Encode()
	}
	conn, resp, err := wiretest.DialWS(u, header(headers...), nil)
	if err == nil {
		return conn, outcome{ok: true}
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, reason := errorOf(body)
	return nil, outcome{code: resp.StatusCode, reason: reason}
}

// expectClose reads until the close frame and checks its code.
func (c *wsClient) expectClose(code int) {
	c.t.Helper()
	for {
		_, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			c.t.Fatalf("close %v, want code %d", err, code)
		}
		return
	}
}

// command sends one command and returns the frame that answers its id.
func (c *wsClient) command(id uint64, cmd string) frame {
	c.t.Helper()
	c.Send(cmd)
	return answerTo(c.t, id, c.next)
}

// answerTo reads frames with next until the one that answers command id
// (reply, subscribed or error), skipping others; a disconnect before it
// fails the test.
func answerTo(t *testing.T, id uint64, next func() frame) frame {
	t.Helper()
	for {
		f := next()
		if f.ID == id && (f.Type == "reply" || f.Type == "subscribed" || f.Type == "error") {
			return f
		}
		if f.Type == "disconnect" {
			t.Fatalf("disconnected while waiting for command %d: %+v", id, f)
		}
	}
}

// answerOutcome turns a command's answer into an outcome.
func answerOutcome(f frame) outcome {
	if f.Type == "error" {
		return outcome{code: f.Code, reason: f.Reason}
	}
	return outcome{ok: true}
}

func subscribeCmd(id uint64, ch, tok string) string {
	b, _ := json.Marshal(map[string]any{"type": "subscribe", "id": id, "channel": ch, "token": tok})
	return string(b)
}

func publishCmd(id uint64, ch string, data any) string {
	b, _ := json.Marshal(map[string]any{"type": "publish", "id": id, "channel": ch, "data": data})
	return string(b)
}

func authCmd(id uint64, tok string) string {
	b, _ := json.Marshal(map[string]any{"type": "auth", "id": id, "token": tok})
	return string(b)
}

// --- commands over WebSocket or SockJS

// commander is a session that answers commands: a wsClient or an sjClient.
type commander interface {
	command(id uint64, cmd string) frame
}

// commandTransport dials a session that takes commands, with tok in the
// query; a refusal is the outcome.
type commandTransport struct {
	name string
	dial func(t *testing.T, base, tok string) (commander, outcome)
}

var (
	wsCommands = commandTransport{"ws", func(t *testing.T, base, tok string) (commander, outcome) {
		c, o := dialWSToken(t, base, tok)
		return c, o
	}}
	sockJSCommands = commandTransport{"sockjs", func(t *testing.T, base, tok string) (commander, outcome) {
		c, o := dialSockJS(t, base, tok)
		return c, o
	}}
	// commandTransports are the transports that take commands.
	commandTransports = []commandTransport{wsCommands, sockJSCommands}
)

// run dials with tok and sends cmds in order, each given its id (1, 2, ...).
// The outcome is the dial's refusal, else the first command's refusal.
func (ct commandTransport) run(t *testing.T, base, tok string, cmds ...func(id uint64) string) outcome {
	t.Helper()
	c, o := ct.dial(t, base, tok)
	if !o.ok {
		return o
	}
	for i, cmd := range cmds {
		id := uint64(i + 1)
		if o := answerOutcome(c.command(id, cmd(id))); !o.ok {
			return o
		}
	}
	return outcome{ok: true}
}

// subscribing, publishing and authenticating are commands for run.
func subscribing(ch, tok string) func(uint64) string {
	return func(id uint64) string { return subscribeCmd(id, ch, tok) }
}

func publishing(ch string, data any) func(uint64) string {
	return func(id uint64) string { return publishCmd(id, ch, data) }
}

func authenticating(tok string) func(uint64) string {
	return func(id uint64) string { return authCmd(id, tok) }
}

// --- SSE

// sseOpen opens /connect/sse with query and returns the outcome: a stream
// that delivers its hello is ok. The stream is closed before returning.
func sseOpen(t *testing.T, base string, q url.Values, headers ...string) (outcome, http.Header) {
	t.Helper()
	st, a := wiretest.DialSSE(t, http.DefaultClient, base+"/connect/sse?"+q.Encode(), header(headers...))
	if st == nil {
		code, reason := errorOf([]byte(a.Body))
		if code != a.Status {
			t.Errorf("sse error body %q under status %d", a.Body, a.Status)
		}
		return outcome{code: a.Status, reason: reason}, a.Header
	}
	defer st.Close()
	for ev := st.Next(t); ev.Frame.Type != "hello"; ev = st.Next(t) {
	}
	return outcome{ok: true}, a.Header
}

// frameStream is a connection's frames, read by the test: an SSE stream,
// or a SockJS session's.
type frameStream struct {
	*wiretest.Stream
	t *testing.T
}

// openSSEStream opens /connect/sse with query; a refusal fails the test.
func openSSEStream(t *testing.T, base string, q url.Values, headers ...string) *frameStream {
	t.Helper()
	st, err := wiretest.OpenSSE(http.DefaultClient, base+"/connect/sse?"+q.Encode(), header(headers...))
	if err != nil {
		t.Fatalf("sse: %v", err)
	}
	t.Cleanup(st.Close)
	return &frameStream{Stream: st, t: t}
}

// next returns the next frame; the stream's end fails the test.
func (s *frameStream) next() frame {
	s.t.Helper()
	f, err := s.Next(wiretest.WaitLimit)
	if err != nil {
		s.t.Fatalf("stream ended: %v", err)
	}
	return f
}

// --- long-poll and JSONP

// pollGet makes one poll; cb, when set, makes it JSONP.
func pollGet(t *testing.T, base string, q url.Values, cb string, headers ...string) (outcome, http.Header) {
	t.Helper()
	if cb != "" {
		q.Set("callback", cb)
	}
	return pollOutcome(t, do(t, http.MethodGet, base+"/connect/poll?"+q.Encode(), "", headers...), cb)
}

// pollPost polls as pollGet does, with q as a POST form (as the client
// sends a channel list too long for a URL).
func pollPost(t *testing.T, base string, q url.Values, headers ...string) (outcome, http.Header) {
	t.Helper()
	headers = append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)
	return pollOutcome(t, do(t, http.MethodPost, base+"/connect/poll", q.Encode(), headers...), "")
}

// pollOutcome reads a poll's answer a: its refusal, or that it subscribed.
func pollOutcome(t *testing.T, a answer, cb string) (outcome, http.Header) {
	t.Helper()
	if a.status != http.StatusOK {
		code, reason := errorOf(a.body)
		if cb == "" && code != a.status { // JSONP without a callback to call is a plain error
			t.Errorf("poll error body %q under status %d", a.body, a.status)
		}
		return outcome{code: a.status, reason: reason}, a.header
	}
	ans, err := wire.DecodePoll(a.body, cb)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Error != nil {
		return outcome{code: ans.Error.Code, reason: ans.Error.Reason}, a.header
	}
	for _, f := range ans.Messages {
		if f.Type == "subscribed" {
			return outcome{ok: true}, a.header
		}
	}
	t.Fatalf("poll answer without subscribed: %s", a.body)
	return outcome{}, nil
}

// --- client publish over HTTP

func clientPublish(t *testing.T, base, ch, tok string, headers ...string) (outcome, http.Header) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"channel": ch, "data": "x", "token": tok})
	a := postJSON(t, base+"/connect/publish", string(b), headers...)
	if a.status == http.StatusOK {
		return outcome{ok: true}, a.header
	}
	code, reason := errorOf(a.body)
	if code != a.status {
		t.Errorf("publish error body %q under status %d", a.body, a.status)
	}
	return outcome{code: a.status, reason: reason}, a.header
}

// --- SockJS over its WebSocket transport, as sockjs-client frames it

// sjClient is a SockJS session's WaterSpout frames; its close frame ends
// the stream with a wiretest.ClosedError.
type sjClient struct {
	*frameStream
	conn *websocket.Conn
}

// dialSockJS opens a SockJS session with tok in the query. A refused
// session sends a disconnect frame, then a close frame with the same code.
func dialSockJS(t *testing.T, base, tok string, headers ...string) (*sjClient, outcome) {
	t.Helper()
	conn, refused := dialRefusable(t, wsURL(wiretest.SockJSSession(base+"/connect/sockjs"), "/websocket"), tok, headers...)
	if conn == nil {
		return nil, refused
	}
	c := &sjClient{&frameStream{wiretest.StreamWS(conn, wiretest.SockJSFrames), t}, conn}
	t.Cleanup(c.Close)
	f, err := c.Next(wiretest.WaitLimit)
	switch {
	case err == nil && f.Type == "hello":
		return c, outcome{ok: true}
	case err == nil && f.Type == "disconnect":
		var closed wiretest.ClosedError
		if _, err := c.Next(wiretest.WaitLimit); !errors.As(err, &closed) || closed.Code != f.Code {
			t.Fatalf("after the disconnect frame %+v: %v, want the close frame with its code", f, err)
		}
		return nil, outcome{code: f.Code, reason: f.Reason}
	}
	t.Fatalf("sockjs first frame %+v (%v)", f, err)
	return nil, outcome{}
}

// send sends msgs as one SockJS frame, as sockjs-client does.
func (c *sjClient) send(msgs ...string) {
	c.t.Helper()
	b, _ := json.Marshal(msgs)
	c.conn.SetWriteDeadline(time.Now().Add(wiretest.WaitLimit))
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("sockjs write: %v", err)
	}
}

// expectClose reads until the session's close frame and checks its code,
// and that of any disconnect frame before it.
func (c *sjClient) expectClose(code int) {
	c.t.Helper()
	for {
		f, err := c.Next(wiretest.WaitLimit)
		var closed wiretest.ClosedError
		switch {
		case errors.As(err, &closed) && closed.Code == code:
			return
		case err != nil:
			c.t.Fatalf("session ended with %v, want the close frame c[%d,...]", err, code)
		case f.Type == "disconnect" && f.Code != code:
			c.t.Fatalf("disconnect %+v, want code %d", f, code)
		}
	}
}

// command sends one command and returns the frame that answers its id.
func (c *sjClient) command(id uint64, cmd string) frame {
	c.t.Helper()
	c.send(cmd)
	return answerTo(c.t, id, c.next)
}
