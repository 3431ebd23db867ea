package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

func TestHello(t *testing.T) {
	t.Parallel()
	limits := session.Limits{MaxMessageBytes: 4096, MaxChannels: 8, MaxQueueBytes: 1 << 20}
	e := newEnv(t, envConfig{Node: session.Config{Ping: 7 * time.Second, Limits: limits}})
	_, hello := e.dial(t, dialOptions{header: http.Header{"Origin": {wiretest.AllowedOrigin}}})
	if hello.Session == "" || hello.Transport != "ws" || hello.Ping != 7 {
		t.Errorf("hello %+v: want a session id, transport ws, ping 7", hello)
	}
	if hello.Limits == nil || *hello.Limits != wire.Limits(limits) {
		t.Errorf("hello limits %+v, want %+v", hello.Limits, limits)
	}
	if n := e.Node.SessionCount(); n != 1 {
		t.Errorf("SessionCount %d, want 1", n)
	}
}

func TestHandshakeRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	upgrade := http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
	with := func(h http.Header, k, v string) http.Header {
		h = h.Clone()
		h.Set(k, v)
		return h
	}
	tests := []struct {
		name   string
		method string
		header http.Header
		status int
	}{
		{"plain GET", http.MethodGet, nil, http.StatusBadRequest},
		{"origin not allowed", http.MethodGet, with(upgrade, "Origin", "http://evil.example"), http.StatusForbidden},
		{"POST upgrade", http.MethodPost, upgrade, http.StatusMethodNotAllowed},
		{"bad version", http.MethodGet, with(upgrade, "Sec-Websocket-Version", "8"), http.StatusBadRequest},
		{"bad key", http.MethodGet, with(upgrade, "Sec-Websocket-Key", "short"), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, e.Srv.URL+"/connect/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tt.header.Clone()
			if req.Header == nil {
				req.Header = http.Header{}
			}
			resp, err := e.Srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error session.Error `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if resp.StatusCode != tt.status || body.Error.Code != tt.status || body.Error.Reason == "" {
				t.Errorf("got %d %+v, want %d with a JSON error body", resp.StatusCode, body, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if n := e.Node.SessionCount(); n != 0 {
				t.Errorf("SessionCount %d after a refused handshake, want 0", n)
			}
		})
	}
	// A WebSocket client sees the origin refusal as a failed handshake.
	_, resp, err := e.dialConn(dialOptions{header: http.Header{"Origin": {"http://evil.example"}}})
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("dial from a foreign origin: %v %v, want 403", err, resp)
	}
	if resp != nil {
		resp.Body.Close()
	}
	if n := e.Node.SessionCount(); n != 0 {
		t.Errorf("SessionCount %d, want 0", n)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{Transport: transports.Config{
		Authenticate: func(r *http.Request, s *session.Session) error {
			switch r.URL.Query().Get("token") {
			case "good":
				s.SetUser("alice")
				return nil
			case "down":
				return errors.New("key service unreachable")
			case "panic":
				panic("authenticator bug")
			}
			return session.DisconnectInvalidToken
		},
	}})
	tests := []struct {
		query     string
		code      int // 0: accepted
		reconnect bool
	}{
		{"token=good", 0, false},
		{"token=forged", session.DisconnectInvalidToken.Code, false},
		{"", session.DisconnectInvalidToken.Code, false},
		{"token=down", session.DisconnectInternal.Code, true},
		{"token=panic", session.DisconnectInternal.Code, true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			ws, resp, err := e.dialConn(dialOptions{query: tt.query})
			if err != nil {
				t.Fatalf("dial: %v %v", err, resp)
			}
			defer ws.Close()
			c := wiretest.NewWSClient(t, ws)
			if tt.code == 0 {
				if f := c.Next(); f.Type != "hello" {
					t.Fatalf("first frame %+v, want hello", f)
				}
				return
			}
			// Refused after the upgrade, so a browser sees why: the
			// disconnect frame is the only frame, then the same close code.
			c.ExpectDisconnect(tt.code, tt.reconnect)
			if c.Messages != 1 {
				t.Errorf("%d messages before the close, want only the disconnect frame", c.Messages)
			}
		})
	}
	e.WaitSessions(t, 0)
}

func TestSubscribePublish(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	c, _ := e.dial(t, dialOptions{})
	sub := c.Subscribe(1, "news", nil)
	if sub.Epoch == "" || sub.Offset != 0 || sub.Recovered != nil {
		t.Errorf("subscribed %+v: want an epoch, offset 0 and no recovered field", sub)
	}
	res, err := e.Node.Publish(context.Background(), "news", json.RawMessage(`{"text":"hi"}`), "")
	if err != nil {
		t.Fatal(err)
	}
	m := c.NextNonPing()
	if m.Type != "message" || m.Channel != "news" || m.Offset != res.Offset || m.Epoch != res.Epoch || string(m.Data) != `{"text":"hi"}` {
		t.Errorf("message %+v, want news/%d/%s with the published data", m, res.Offset, res.Epoch)
	}
	// "\n" separates frames, so data published with newlines (indented
	// JSON, or a newline inside a string) must not carry a raw one.
	if _, err := e.Node.Publish(context.Background(), "news", json.RawMessage("{\n  \"text\": \"two\\nlines\"\n}"), ""); err != nil {
		t.Fatal(err)
	}
	fs, err := c.ReadMessage()
	if err != nil || len(fs) != 1 || string(fs[0].Data) != `{"text":"two\nlines"}` {
		t.Errorf("got %+v (%v), want one frame with the data compacted", fs, err)
	}
}

// TestPublishOrder publishes quickly to two subscribers: each sees every
// message once, in order, batched into fewer WebSocket messages when the
// writer falls behind.
func TestPublishOrder(t *testing.T) {
	t.Parallel()
	const n = 1000
	e := newEnv(t, envConfig{})
	clients := make([]*client, 2)
	for i := range clients {
		clients[i], _ = e.dial(t, dialOptions{})
		clients[i].Subscribe(1, "seq", nil)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		publishN(t, e.Node, "seq", 1, n)
	}()
	for i, c := range clients {
		for want := 1; want <= n; want++ {
			m := c.NextNonPing()
			if m.Type != "message" || m.Offset != uint64(want) || wiretest.Number(t, m) != want {
				t.Fatalf("client %d: got %+v, want message %d", i, m, want)
			}
		}
		t.Logf("client %d: %d messages in %d WebSocket messages", i, n, c.Messages-2)
	}
	<-done
}

func TestResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	first, _ := e.dial(t, dialOptions{})
	sub := first.Subscribe(1, "feed", nil)
	publishN(t, e.Node, "feed", 1, 3)
	var last frame
	for range 3 {
		last = first.NextNonPing()
	}
	first.Conn.Close()
	e.WaitSessions(t, 0)
	publishN(t, e.Node, "feed", 4, 8)

	tests := []struct {
		name      string
		since     session.Position
		recovered bool
		offset    uint64   // in the subscribed frame
		want      []string // replayed payloads, in order, from offset+1
	}{
		{"same epoch", session.Position{Epoch: last.Epoch, Offset: last.Offset}, true, 3, []string{"4", "5", "6", "7", "8"}},
		// The client's history is gone: recovered:false, then all the current
		// epoch holds, from its start (the case before published "live" at 9).
		{"other epoch", session.Position{Epoch: "gone", Offset: 3}, false, 0, []string{"1", "2", "3", "4", "5", "6", "7", "8", `"live"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := e.dial(t, dialOptions{})
			got := c.Subscribe(2, "feed", &tt.since)
			if got.Recovered == nil || *got.Recovered != tt.recovered || got.Offset != tt.offset || got.Epoch != sub.Epoch {
				t.Fatalf("subscribed %+v, want recovered=%v at %s/%d", got, tt.recovered, sub.Epoch, tt.offset)
			}
			// The subscribed frame and the replay were queued together, so
			// they arrive in one WebSocket message.
			if len(c.Pending) != len(tt.want) {
				t.Errorf("%d frames after subscribed in the same message, want the %d replayed", len(c.Pending), len(tt.want))
			}
			for i, w := range tt.want {
				if m := c.NextNonPing(); m.Type != "message" || string(m.Data) != w || m.Offset != tt.offset+uint64(i)+1 {
					t.Fatalf("got %+v, want replayed message %s at offset %d", m, w, tt.offset+uint64(i)+1)
				}
			}
			// Live delivery continues after the replay with no duplicate.
			res, err := e.Node.Publish(context.Background(), "feed", json.RawMessage(`"live"`), "")
			if err != nil {
				t.Fatal(err)
			}
			if m := c.NextNonPing(); m.Type != "message" || m.Offset != res.Offset || string(m.Data) != `"live"` {
				t.Fatalf("got %+v, want live message %d", m, res.Offset)
			}
			c.Conn.Close()
			e.WaitSessions(t, 0)
		})
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	tests := []struct {
		name   string
		binary bool
		msg    string
		id     uint64
	}{
		{"malformed JSON", false, `{"type":`, 0},
		{"not an object", false, `[1,2]`, 0},
		{"empty frame", false, " \n ", 0},
		{"unknown command", false, `{"type":"launch","id":5}`, 5},
		{"bad channel name", false, `{"type":"subscribe","id":6,"channel":"no spaces"}`, 6},
		{"bad position", false, `{"type":"subscribe","id":7,"channel":"ok","since":{"epoch":"","offset":1}}`, 7},
		{"binary frame", true, `{"type":"ping","id":8}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := e.dial(t, dialOptions{})
			typ := websocket.TextMessage
			if tt.binary {
				typ = websocket.BinaryMessage
			}
			if err := c.Conn.WriteMessage(typ, []byte(tt.msg)); err != nil {
				t.Fatal(err)
			}
			f := c.NextNonPing()
			if f.Type != "error" || f.Code != 400 || f.ID != tt.id || f.Reason == "" {
				t.Fatalf("got %+v, want error 400 for id %d", f, tt.id)
			}
			// Nothing else changed: the connection still works.
			c.Subscribe(9, "after", nil)
			c.Send(`{"type":"ping","id":10}`)
			if f := c.NextNonPing(); f.Type != "reply" || f.ID != 10 {
				t.Fatalf("got %+v, want reply 10", f)
			}
		})
	}
}

func TestMessageTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{Node: session.Config{Limits: session.Limits{MaxMessageBytes: 1024}}})
	tests := []struct {
		name string
		size int
		ok   bool
	}{
		{"at the limit", 1024, true},
		{"over the limit", 1025, false},
		{"far over the limit", 1 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := e.dial(t, dialOptions{})
			cmd := `{"type":"ping","id":1}`
			c.Send(cmd + strings.Repeat(" ", tt.size-len(cmd)))
			if tt.ok {
				if f := c.NextNonPing(); f.Type != "reply" || f.ID != 1 {
					t.Fatalf("got %+v, want reply 1", f)
				}
				return
			}
			c.ExpectDisconnect(session.DisconnectMessageTooLarge.Code, false)
		})
	}
	e.WaitSessions(t, 0)
}

func TestClientPublish(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{Node: session.Config{Namespaces: []session.Namespace{
		{Name: "chat", ClientPublish: true, Anonymous: true, HistorySize: 100, HistoryTTL: time.Minute},
	}}})
	listener, _ := e.dial(t, dialOptions{})
	listener.Subscribe(1, "chat:lobby", nil)
	c, _ := e.dial(t, dialOptions{})
	tests := []struct {
		channel string
		code    int // 0: allowed
	}{
		{"news", 403},
		{"chat:lobby", 0},
	}
	for i, tt := range tests {
		t.Run(tt.channel, func(t *testing.T) {
			id := uint64(i + 1)
			c.Send(fmt.Sprintf(`{"type":"publish","id":%d,"channel":%q,"data":{"n":%d}}`, id, tt.channel, id))
			f := c.NextNonPing()
			if tt.code != 0 {
				if f.Type != "error" || f.ID != id || f.Code != tt.code {
					t.Fatalf("got %+v, want error %d", f, tt.code)
				}
				return
			}
			if f.Type != "reply" || f.ID != id || f.Channel != tt.channel || f.Offset != 1 || f.Epoch == "" {
				t.Fatalf("got %+v, want a reply with offset 1 and an epoch", f)
			}
			m := listener.NextNonPing()
			if m.Type != "message" || m.Offset != f.Offset || m.Epoch != f.Epoch || string(m.Data) != fmt.Sprintf(`{"n":%d}`, id) {
				t.Fatalf("subscriber got %+v", m)
			}
		})
	}
}

// TestStalledClient: a client that stops reading loses its own connection;
// a healthy subscriber of the same channel gets everything and publishing
// never waits for either.
func TestStalledClient(t *testing.T) {
	t.Parallel()
	const n, size = 200, 16 << 10
	e := newEnv(t, envConfig{
		Node:      session.Config{Limits: session.Limits{MaxQueueBytes: 64 << 10}},
		Transport: transports.Config{WriteTimeout: time.Second},
		// Small server socket buffers make the stalled writer block soon.
		Server: wiretest.SmallSendBuffers(16 << 10),
	})
	stalled, _ := e.dial(t, dialOptions{dialer: &websocket.Dialer{
		NetDialContext: wiretest.SmallReceiveBuffer(4 << 10).DialContext,
	}})
	stalled.Subscribe(1, "big", nil)
	healthy, _ := e.dial(t, dialOptions{})
	healthy.Subscribe(1, "big", nil)

	// The healthy client reads each message before the next is published,
	// so only the stalled client's queue can overflow.
	pad := strings.Repeat("x", size)
	for i := 1; i <= n; i++ {
		data := json.RawMessage(fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad))
		if _, err := e.Node.Publish(context.Background(), "big", data, ""); err != nil {
			t.Fatal(err)
		}
		m := healthy.NextNonPing()
		var d struct{ I int }
		if err := json.Unmarshal(m.Data, &d); err != nil || m.Type != "message" || d.I != i {
			t.Fatalf("healthy client got %+v (%v), want message %d", m, err, i)
		}
	}
	e.WaitSessions(t, 1)
	if got := e.Metrics.ClosedWith(session.DisconnectSlow.Code); got != 1 {
		t.Errorf("%d sessions closed as slow consumers, want 1", got)
	}
}

func TestHeartbeats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{Node: session.Config{Ping: time.Second}})
	c, hello := e.dial(t, dialOptions{})
	if hello.Ping != 1 {
		t.Fatalf("hello ping %d, want 1", hello.Ping)
	}
	var mu sync.Mutex
	pings := 0
	c.Conn.SetPingHandler(func(data string) error {
		mu.Lock()
		pings++
		mu.Unlock()
		return c.Conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(wiretest.WaitLimit))
	})
	// Four ping frames take longer than the pong wait (3 s for a 1 s
	// ping), so answering protocol pings is what keeps the connection.
	for range 4 {
		if f := c.Next(); f.Type != "ping" {
			t.Fatalf("idle client got %+v, want a ping frame", f)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if pings == 0 {
		t.Error("no protocol ping received")
	}
}

// TestBusyConnectionStaysAlive: a client that only receives (it never sends
// a command) stays connected while data flows for longer than the pong wait,
// because protocol pings go out on schedule even when the writer is busy.
func TestBusyConnectionStaysAlive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{Node: session.Config{Ping: time.Second}})
	c, _ := e.dial(t, dialOptions{}) // gorilla's client answers pings while reading
	c.Subscribe(1, "ticks", nil)
	const n = 45 // 4.5 s of data, well past the 3 s pong wait
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 1; i <= n; i++ {
		<-tick.C
		publishN(t, e.Node, "ticks", i, i)
		if m := c.NextNonPing(); m.Type != "message" || wiretest.Number(t, m) != i {
			t.Fatalf("got %+v, want message %d", m, i)
		}
	}
}

func TestDeadPeer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{Node: session.Config{Ping: time.Second}})
	c, _ := e.dial(t, dialOptions{})
	c.Conn.SetPingHandler(func(string) error { return nil }) // never answers
	c.ExpectDisconnect(session.DisconnectStale.Code, true)
	e.WaitSessions(t, 0)
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	clients := make([]*client, 3)
	for i := range clients {
		clients[i], _ = e.dial(t, dialOptions{})
		clients[i].Subscribe(1, "news", nil)
	}
	done := make(chan error, 1)
	go func() { done <- e.Node.Shutdown(context.Background()) }()
	for _, c := range clients {
		c.ExpectDisconnect(session.DisconnectShutdown.Code, true)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// A node that is shutting down refuses new connections the same way.
	ws, _, err := e.dialConn(dialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	late := wiretest.NewWSClient(t, ws)
	late.ExpectDisconnect(session.DisconnectShutdown.Code, true)
}

func TestServerContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, envConfig{Transport: transports.Config{Context: ctx}})
	c, _ := e.dial(t, dialOptions{})
	cancel()
	c.ExpectDisconnect(session.DisconnectShutdown.Code, true)
	e.WaitSessions(t, 0)
}

func TestClientClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	tests := []struct {
		name  string
		close func(*websocket.Conn) error
		code  int // recorded by the session
	}{
		{"close frame", func(ws *websocket.Conn) error {
			return ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(wiretest.WaitLimit))
		}, websocket.CloseNormalClosure},
		{"dropped connection", func(ws *websocket.Conn) error { return ws.NetConn().Close() }, websocket.CloseAbnormalClosure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := e.dial(t, dialOptions{})
			c.Subscribe(1, "news", nil)
			before := e.Metrics.ClosedWith(tt.code)
			if err := tt.close(c.Conn); err != nil {
				t.Fatal(err)
			}
			e.WaitSessions(t, 0)
			if e.Metrics.ClosedWith(tt.code) != before+1 {
				t.Errorf("session not recorded as closed with %d", tt.code)
			}
		})
	}
}

func TestCloseMessage(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	tests := []struct {
		name   string
		reason string
		want   string
	}{
		{"short", "shutdown", "shutdown"},
		{"cut on a rune boundary", long, strings.Repeat("é", 61)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := closeMessage(session.Disconnect{Code: 3001, Reason: tt.reason})
			if len(msg) > 125 {
				t.Fatalf("close payload %d bytes, over the 125-byte control frame limit", len(msg))
			}
			if code := int(msg[0])<<8 | int(msg[1]); code != 3001 || string(msg[2:]) != tt.want {
				t.Errorf("got %d %q, want 3001 %q", code, msg[2:], tt.want)
			}
		})
	}
}

// A client's ping is answered with a pong carrying its data, and a client's
// close frame with a close frame of the same code: the reader leaves both
// writes to the connection's one writer.
func TestClientPingAndCloseAreAnswered(t *testing.T) {
	e := newEnv(t, envConfig{})
	c, _ := e.dial(t, dialOptions{})
	pongs := make(chan string, 4)
	c.Conn.SetPongHandler(func(data string) error { pongs <- data; return nil })
	for _, data := range []string{"one", "two"} {
		if err := c.Conn.WriteControl(websocket.PingMessage, []byte(data), time.Now().Add(wiretest.WaitLimit)); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(wiretest.WaitLimit))
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.Conn.NextReader(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	// RFC 6455 lets a pong answer only the latest of several pings.
	select {
	case got := <-pongs:
		if got != "one" && got != "two" {
			t.Fatalf("pong %q, want the data of a ping", got)
		}
	case <-time.After(wiretest.WaitLimit):
		t.Fatal("no pong for the client's pings")
	}
	if err := c.Conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(wiretest.WaitLimit)); err != nil {
		t.Fatal(err)
	}
	var ce *websocket.CloseError
	if err := <-readErr; !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("after the client's close: %v, want the server's close frame with code %d", err, websocket.CloseGoingAway)
	}
	e.WaitSessions(t, 0)
}
