package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

// wsClient is wiretest's WebSocket client with the server tests' helpers.
type wsClient struct {
	*wiretest.WSClient
	t *testing.T
}

// dialWS connects to /connect/ws and reads the hello; a refusal fails the
// test.
func dialWS(t *testing.T, base string, headers ...string) *wsClient {
	t.Helper()
	c, o := dialWSToken(t, base, "", headers...)
	if !o.ok {
		t.Fatalf("dial refused: %v", o)
	}
	return c
}

// next returns the next frame, reading a message when none is buffered.
func (c *wsClient) next() frame {
	c.t.Helper()
	return c.Next()
}

func (c *wsClient) subscribe(ch string) {
	c.t.Helper()
	c.Send(string(wire.Subscribe(1, ch, nil)))
	for f := c.next(); f.Type != "subscribed"; f = c.next() {
		if f.Type == "error" {
			c.t.Fatalf("subscribe refused: %+v", f)
		}
	}
}

func TestWebSocketSubscriberGetsKeyedPublicationOnce(t *testing.T) {
	ts := newTestServer(t, nil)
	c := dialWS(t, ts.URL)
	c.subscribe("orders")
	body := `{"channel":"orders","data":{"order":7},"key":"order-7"}`
	for range 3 {
		if a := postJSON(t, ts.URL+"/api/publish", body); a.status != 200 {
			t.Fatalf("publish: %d %s", a.status, a.body)
		}
	}
	postJSON(t, ts.URL+"/api/publish", `{"channel":"orders","data":"end"}`)
	var got []frame
	for f := c.next(); string(f.Data) != `"end"`; f = c.next() {
		if f.Type == "message" {
			got = append(got, f)
		}
	}
	if len(got) != 1 || got[0].Key != "order-7" || got[0].Offset != 1 || string(got[0].Data) != `{"order":7}` {
		t.Errorf("messages before the end marker: %+v", got)
	}
}

func TestTransportsAreMounted(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowedOrigins = []string{"https://app.example.com"} })
	t.Run("ws refuses an unlisted origin", func(t *testing.T) {
		if _, o := dialWSToken(t, ts.URL, "", "Origin", "https://evil.example"); o.code != http.StatusForbidden {
			t.Fatalf("dial from an unlisted origin: %v", o)
		}
	})
	t.Run("ws accepts a listed origin", func(t *testing.T) {
		dialWS(t, ts.URL, "Origin", "https://app.example.com")
	})
	t.Run("sse streams unbuffered and uncompressed", func(t *testing.T) {
		// Asking for gzip ourselves turns off net/http's transparent gunzip,
		// so a Content-Encoding would show.
		st, refused := wiretest.DialSSE(t, http.DefaultClient, ts.URL+"/connect/sse?channel=s", header("Accept-Encoding", "gzip"))
		if st == nil || !strings.HasPrefix(refused.Header.Get("Content-Type"), "text/event-stream") ||
			refused.Header.Get("Content-Encoding") != "" {
			t.Fatalf("%d %v %s", refused.Status, refused.Header, refused.Body)
		}
		// The hello event arrives while the stream stays open: nothing buffers it.
		for ev := st.Next(t); ev.Frame.Type != "hello"; ev = st.Next(t) {
		}
	})
	t.Run("poll answers the first request at once", func(t *testing.T) {
		a := do(t, http.MethodGet, ts.URL+"/connect/poll?channel=p", "")
		if a.status != 200 || !strings.Contains(string(a.body), `"hello"`) || !strings.Contains(string(a.body), `"cursor"`) {
			t.Fatalf("%d %s", a.status, a.body)
		}
	})
	t.Run("client publish is mounted", func(t *testing.T) {
		// The default namespace does not allow client publishing.
		a := postJSON(t, ts.URL+"/connect/publish", `{"channel":"p","data":1}`)
		if a.status != http.StatusForbidden {
			t.Fatalf("%d %s", a.status, a.body)
		}
	})
	t.Run("sockjs info", func(t *testing.T) {
		a := do(t, http.MethodGet, ts.URL+"/connect/sockjs/info", "")
		if a.status != 200 || !strings.Contains(string(a.body), `"websocket"`) {
			t.Fatalf("%d %s", a.status, a.body)
		}
	})
	t.Run("streams are not logged as requests", func(t *testing.T) {
		if strings.Contains(ts.logs.String(), "url=/connect/") {
			t.Errorf("a /connect/ route went through the request log:\n%s", ts.logs.String())
		}
	})
}

func TestShutdownClosesWebSockets(t *testing.T) {
	s := newQuietServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	base, done := runServer(t, s, ctx)
	c := dialWS(t, base)
	c.subscribe("news")
	if got := string(do(t, http.MethodGet, base+"/metrics", "").body); !strings.Contains(got, `waterspout_connections{transport="ws"} 1`) {
		t.Errorf("metrics do not count the WebSocket:\n%s", got)
	}
	cancel() // as SIGTERM does
	c.ExpectDisconnect(session.DisconnectShutdown.Code, session.DisconnectShutdown.Reconnect)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
