package ws

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/session"
)

// TestCommandRateFraming checks that a client over the command rate sees the
// same thing whether its commands came in one WebSocket frame or in many:
// replies within the burst, `error` 429 for each refused command, then
// disconnect 3008 (docs/PROTOCOL.md, rate limits). A session ended for the
// rate used to drop what it had queued, so a single frame got only the
// disconnect.
func TestCommandRateFraming(t *testing.T) {
	const burst, sent = 5, 12
	cmds := make([]string, sent)
	for i := range cmds {
		cmds[i] = `{"type":"ping","id":` + strconv.Itoa(i+1) + `}`
	}
	for _, tc := range []struct {
		name string
		send func(c *client)
		// exact: every command arrives at one instant, so the bucket does
		// not refill between them and the counts are the burst's.
		exact bool
	}{
		{"one frame", func(c *client) { c.Send(strings.Join(cmds, "\n")) }, true},
		{"separate frames", func(c *client) {
			for _, cmd := range cmds {
				c.Send(cmd)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{Node: session.Config{CommandRate: session.CommandRate{PerSecond: burst, Burst: burst}}})
			c, _ := e.dial(t, dialOptions{})
			tc.send(c)
			var got []frame
			for {
				fs, err := c.ReadMessage()
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					if ce.Code != session.DisconnectRateLimited.Code {
						t.Fatalf("close code %d, want %d", ce.Code, session.DisconnectRateLimited.Code)
					}
					break
				}
				if err != nil {
					t.Fatalf("read: %v (frames so far %+v)", err, got)
				}
				for _, f := range fs {
					if f.Type != "ping" {
						got = append(got, f)
					}
				}
			}
			replies, refused := 0, 0
			for i, f := range got {
				switch {
				case f.Type == "reply" && refused == 0 && f.ID == uint64(i+1):
					replies++
				case f.Type == "error" && f.Code == 429 && f.ID == uint64(i+1):
					refused++
				case f.Type == "disconnect" && i == len(got)-1 && f.Code == session.DisconnectRateLimited.Code:
				default:
					t.Fatalf("frame %d: %+v; all: %+v", i, f, got)
				}
			}
			if last := got[len(got)-1]; last.Type != "disconnect" {
				t.Fatalf("last frame %+v, want disconnect 3008", last)
			}
			if tc.exact && (replies != burst || refused != burst) {
				t.Fatalf("%d replies and %d refusals, want %d of each before the disconnect: %+v", replies, refused, burst, got)
			}
			if replies < burst || refused < 1 {
				t.Fatalf("%d replies and %d refusals before the disconnect, want the burst's replies and then 429s: %+v", replies, refused, got)
			}
		})
	}
}
