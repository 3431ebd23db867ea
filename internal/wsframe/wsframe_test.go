package wsframe

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Frames built here read back through gorilla's own client as the messages
// and control frames meant, at each payload length encoding (7-bit, 16-bit,
// 64-bit) and for every control opcode.
func TestFramesReadBackThroughGorilla(t *testing.T) {
	texts := []string{"", "hello", strings.Repeat("a", 126), strings.Repeat("b", 0xFFFF), strings.Repeat("c", 0x10000)}
	var wire []byte
	for _, s := range texts {
		wire = append(AppendHeader(wire, OpText, len(s)), s...)
	}
	var err error
	if wire, err = AppendControl(wire, OpPing, []byte("p")); err != nil {
		t.Fatal(err)
	}
	if wire, err = AppendControl(wire, OpPong, nil); err != nil {
		t.Fatal(err)
	}
	if wire, err = AppendControl(wire, OpClose, ClosePayload(3005, "stale")); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.UnderlyingConn().Write(wire) // the frames as this package built them
		_, _, _ = c.ReadMessage()             // until the client leaves
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadLimit(1 << 20)

	var pings, pongs []string
	ws.SetPingHandler(func(d string) error { pings = append(pings, d); return nil })
	ws.SetPongHandler(func(d string) error { pongs = append(pongs, d); return nil })
	for i, want := range texts {
		typ, got, err := ws.ReadMessage()
		if err != nil || typ != websocket.TextMessage || string(got) != want {
			t.Fatalf("message %d: type %d, %d bytes, %v; want text of %d bytes", i, typ, len(got), err, len(want))
		}
	}
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 3005 || ce.Text != "stale" {
		t.Fatalf("close: %v, want 3005 stale", err)
	}
	if len(pings) != 1 || pings[0] != "p" || len(pongs) != 1 || pongs[0] != "" {
		t.Fatalf("pings %q, pongs %q", pings, pongs)
	}
}

// A control payload over 125 bytes is refused, not sent; a close reason is
// cut to fit, on a UTF-8 boundary; no status means no payload.
func TestControlLimits(t *testing.T) {
	if _, err := AppendControl(nil, OpPong, make([]byte, 126)); err != ErrControlTooLong {
		t.Fatalf("126-byte pong: %v, want ErrControlTooLong", err)
	}
	p := ClosePayload(3500, strings.Repeat("é", 100))
	if len(p) > MaxControlPayload || !utf8.Valid(p[2:]) || len(p) < MaxControlPayload-1 {
		t.Fatalf("close payload %d bytes, valid UTF-8 %v", len(p), utf8.Valid(p[2:]))
	}
	if p := ClosePayload(CloseNoStatus, "x"); len(p) != 0 {
		t.Fatalf("no-status close payload %q, want empty", p)
	}
}

// A bare pong is recognised; anything else (a pong with data, a ping, a
// partial read) is left for gorilla.
func TestIsBareClientPong(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want bool
	}{
		{[]byte{0x8A, 0x80, 1, 2, 3, 4}, true},
		{[]byte{0x8A, 0x81, 1, 2, 3, 4}, false},
		{[]byte{0x89, 0x80, 1, 2, 3, 4}, false},
		{[]byte{0x8A, 0x80, 1, 2}, false},
	} {
		if got := IsBareClientPong(c.b); got != c.want {
			t.Errorf("% x: %v, want %v", c.b, got, c.want)
		}
	}
}
