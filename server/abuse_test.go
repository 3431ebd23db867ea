package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/apiclient"
	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

func TestTokenExpiryOnLiveConnections(t *testing.T) {
	ts := newTestServer(t, then(secure(t), func(c *Config) { c.Tokens.Leeway = time.Millisecond }))
	// exp has whole seconds: this token expires between 1 and 2 s from now.
	short := connToken(t, "17", nil, nil, 2*time.Second)
	fresh := connToken(t, "17", nil, nil, time.Hour)

	expiring, _ := dialWSToken(t, ts.URL, short)
	refreshed, _ := dialWSToken(t, ts.URL, short)
	stream := openSSEStream(t, ts.URL, url.Values{"channel": {"news"}, "token": {short}})
	for _, c := range []*wsClient{expiring, refreshed} {
		if f := c.command(1, subscribeCmd(1, "news", "")); f.Type != "subscribed" {
			t.Fatalf("subscribe: %+v", f)
		}
	}
	if f := refreshed.command(2, authCmd(2, fresh)); f.Type != "reply" {
		t.Fatalf("auth with a fresh token: %+v", f)
	}
	if f := refreshed.command(3, authCmd(3, connToken(t, "18", nil, nil, time.Hour))); f.Type != "error" || f.Code != 403 {
		t.Fatalf("auth with another subject's token: %+v", f)
	}

	t.Run("ws without a fresh token ends with 3007", func(t *testing.T) {
		f := expiring.next()
		for ; f.Type != "disconnect"; f = expiring.next() {
		}
		if f.Code != session.DisconnectTokenExpired.Code || !f.Reconnect {
			t.Fatalf("disconnect %+v", f)
		}
		expiring.expectClose(session.DisconnectTokenExpired.Code)
	})
	t.Run("sse without a fresh request ends with 3007", func(t *testing.T) {
		f := stream.next()
		for ; f.Type != "disconnect"; f = stream.next() {
		}
		if f.Code != session.DisconnectTokenExpired.Code {
			t.Fatalf("disconnect %+v", f)
		}
	})
	t.Run("ws that sent auth lives past the old expiry", func(t *testing.T) {
		// Both connections had the same deadline, and it has passed.
		a := postJSON(t, ts.URL+"/api/publish", `{"channel":"news","data":"after expiry"}`, "Authorization", "Bearer "+testAPIKey)
		if a.status != 200 {
			t.Fatalf("publish: %d %s", a.status, a.body)
		}
		for f := refreshed.next(); string(f.Data) != `"after expiry"`; f = refreshed.next() {
			if f.Type == "disconnect" {
				t.Fatalf("the refreshed connection was ended: %+v", f)
			}
		}
	})
}

// The flood of TestAbuseCostsOnlyTheAbuser.
const (
	floodWorkers   = 8
	floodConnects  = 2000 // bad-token connects, spread over the transports
	oversizeConns  = 100  // WebSockets that send a frame over the limit
	streamMessages = 500  // the well-behaved client's numbered stream
)

func TestAbuseCostsOnlyTheAbuser(t *testing.T) {
	ts := newTestServer(t, then(secure(t), func(c *Config) {
		c.Limits.MaxMessageBytes = 4096
		c.TrustedProxies = []string{"127.0.0.1"} // attackers come from many addresses
		c.Logger = nil                           // keep the test's log quiet at this volume
		c.LogLevel = "error"
	}))
	bad := badTokens(t, map[string]any{"sub": "17", "channels": []string{"orders:17"}})

	good, _ := dialWSToken(t, ts.URL, "")
	if f := good.command(1, subscribeCmd(1, "stream", "")); f.Type != "subscribed" || f.Offset != 0 {
		t.Fatalf("subscribe: %+v", f)
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: floodWorkers * 2}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, floodWorkers+oversizeConns+1)
	refused := make([]int, floodWorkers)
	for w := range floodWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < floodConnects; i += floodWorkers {
				tok := bad[i%len(bad)].tok
				addr := fmt.Sprintf("203.0.%d.%d", i/250, i%250+1)
				if err := badConnect(client, ts.URL, i%4, tok, addr); err != nil {
					errs <- fmt.Errorf("bad connect %d: %w", i, err)
					return
				}
				refused[w]++
			}
		}()
	}
	for i := range oversizeConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := oversize(ts.URL, fmt.Sprintf("198.51.100.%d", i+1)); err != nil {
				errs <- fmt.Errorf("oversized frame %d: %w", i, err)
			}
		}()
	}
	// The backend publishes through the Go client, with no retries: every
	// publish must succeed the first time.
	backend, err := apiclient.New(apiclient.Config{URL: ts.URL, APIKey: testAPIKey, HTTPClient: client, Retries: apiclient.NoRetries})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= streamMessages; i++ {
			if _, err := backend.Publish(t.Context(), apiclient.PublishRequest{Channel: "stream", Data: i}); err != nil {
				errs <- fmt.Errorf("publish %d: %w", i, err)
				return
			}
		}
	}()

	// Every message of the stream, exactly once and in order.
	for want := 1; want <= streamMessages; {
		f := good.next()
		switch f.Type {
		case "message":
			if f.Channel != "stream" || f.Offset != uint64(want) || string(f.Data) != strconv.Itoa(want) {
				t.Fatalf("message %d: %+v", want, f)
			}
			want++
		case "disconnect":
			t.Fatalf("the well-behaved client was disconnected after %d messages: %+v", want-1, f)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for _, n := range refused {
		total += n
	}
	if total != floodConnects {
		t.Errorf("%d of %d bad connects were refused as they should", total, floodConnects)
	}
	if f := good.command(9, `{"type":"ping","id":9}`); f.Type != "reply" {
		t.Errorf("the well-behaved client after the flood: %+v", f)
	}
}

// badConnect makes one connect with a bad token and checks it is refused:
// kind 0 WebSocket (disconnect 3502 or 3007 after the upgrade), 1 SSE,
// 2 long-poll, 3 client publish (401).
func badConnect(client *http.Client, base string, kind int, tok, addr string) error {
	q := url.Values{"channel": {"orders:17"}, "token": {tok}}
	if kind == 0 {
		conn, _, err := wiretest.DialWS(wsURL(base, "/connect/ws?"+url.Values{"token": {tok}}.Encode()), http.Header{"X-Forwarded-For": {addr}}, nil)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(wiretest.WaitLimit))
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		fs, err := wire.DecodeFrames(msg)
		if err != nil || len(fs) != 1 || fs[0].Type != "disconnect" ||
			(fs[0].Code != session.DisconnectInvalidToken.Code && fs[0].Code != session.DisconnectTokenExpired.Code) {
			return fmt.Errorf("ws answered %s", msg)
		}
		return nil
	}
	var req *http.Request
	switch kind {
	case 1:
		req, _ = http.NewRequest(http.MethodGet, base+"/connect/sse?"+q.Encode(), nil)
	case 2:
		req, _ = http.NewRequest(http.MethodGet, base+"/connect/poll?"+q.Encode(), nil)
	default:
		body, _ := json.Marshal(map[string]any{"channel": "private:17", "data": 1, "token": tok})
		req, _ = http.NewRequest(http.MethodPost, base+"/connect/publish", bytes.NewReader(body))
	}
	req.Header.Set("X-Forwarded-For", addr)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("%s answered %d", req.URL.Path, resp.StatusCode)
	}
	return nil
}

// oversize connects and sends a frame over limits.maxMessageBytes, which
// must end the connection with 3501.
func oversize(base, addr string) error {
	conn, _, err := wiretest.DialWS(wsURL(base, "/connect/ws"), http.Header{"X-Forwarded-For": {addr}}, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(wiretest.WaitLimit))
	big := publishCmd(1, "stream", strings.Repeat("x", 8192))
	if err := conn.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(wiretest.WaitLimit))
	for {
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case err == nil:
		case errors.As(err, &ce) && ce.Code == session.DisconnectMessageTooLarge.Code:
			return nil
		default:
			return fmt.Errorf("want close 3501, got %w", err)
		}
	}
}
