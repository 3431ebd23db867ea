package multinode

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
)

// TestSockJSPinnedBySession checks the one transport that needs stickiness:
// a SockJS session lives on one node across its HTTP requests, and the
// haproxy configuration of docs/OPERATIONS.md pins it by the session id in
// the URL. Every xhr_send must reach the node holding the session's
// xhr_streaming request, while the sessions spread over the nodes.
func TestSockJSPinnedBySession(t *testing.T) {
	c := startCluster(t, 3, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	const sessions, sends = 8, 3
	replies := make([]chan uint64, sessions)
	for i := range sessions {
		base := fmt.Sprintf("%s/connect/sockjs/000/multinode-%d", c.lb, i)
		replies[i] = make(chan uint64, sends)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/xhr_streaming", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("session %d: xhr_streaming: %s", i, resp.Status)
		}
		go readSockJSReplies(resp.Body, replies[i])
	}
	spread := 0
	for _, nd := range c.nodes {
		conns, err := nd.connections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if conns["sockjs"] > 0 {
			spread++
		}
		t.Logf("%s holds %d SockJS sessions", nd.name, conns["sockjs"])
	}
	if spread < 2 {
		t.Errorf("all %d SockJS sessions are on one node: the session id does not spread them", sessions)
	}
	for i := range sessions {
		base := fmt.Sprintf("%s/connect/sockjs/000/multinode-%d", c.lb, i)
		for id := 1; id <= sends; id++ {
			cmd, err := json.Marshal([]string{fmt.Sprintf(`{"type":"ping","id":%d}`, id)})
			if err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/xhr_send", bytes.NewReader(cmd))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "text/plain")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// 404 here means the request reached a node without the session.
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("session %d: xhr_send %d: %s", i, id, resp.Status)
			}
			select {
			case got := <-replies[i]:
				if got != uint64(id) {
					t.Fatalf("session %d: reply to %d, want %d", i, got, id)
				}
			case <-ctx.Done():
				t.Fatalf("session %d: no reply to ping %d on the stream", i, id)
			}
		}
	}
}

// readSockJSReplies reads an xhr_streaming response (SockJS frames, one per
// line: the "h…" prelude, "o", then "a[...]" arrays of messages, each
// holding WaterSpout frames) and sends the id of every reply frame.
func readSockJSReplies(body io.Reader, out chan<- uint64) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		sf, err := wire.DecodeSockJS(sc.Bytes())
		if err != nil || sf.Kind != 'a' {
			continue // the "h…" prelude is not a frame
		}
		for _, fs := range sf.Messages {
			for _, f := range fs {
				if f.Type == "reply" {
					select {
					case out <- f.ID:
					default:
					}
				}
			}
		}
	}
}
