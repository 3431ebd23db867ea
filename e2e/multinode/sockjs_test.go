package multinode

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
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
	streams := make([]*wiretest.Stream, sessions)
	for i := range sessions {
		base := fmt.Sprintf("%s/connect/sockjs/000/multinode-%d", c.lb, i)
		s, err := wiretest.OpenSockJSXHR(client, base)
		if err != nil {
			t.Fatalf("session %d: xhr_streaming: %v", i, err)
		}
		defer s.Close()
		streams[i] = s
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
	deadline, _ := ctx.Deadline()
	for i := range sessions {
		base := fmt.Sprintf("%s/connect/sockjs/000/multinode-%d", c.lb, i)
		for id := 1; id <= sends; id++ {
			cmd, err := json.Marshal([]string{fmt.Sprintf(`{"type":"ping","id":%d}`, id)})
			if err != nil {
				t.Fatal(err)
			}
			r := wiretest.Request(t, client, http.MethodPost, base+"/xhr_send", string(cmd),
				http.Header{"Content-Type": {"text/plain"}})
			// 404 here means the request reached a node without the session.
			if r.Status != http.StatusNoContent {
				t.Fatalf("session %d: xhr_send %d: %d %s", i, id, r.Status, r.Body)
			}
			f, err := streams[i].NextOf("reply", time.Until(deadline))
			if err != nil {
				t.Fatalf("session %d: no reply to ping %d on the stream: %v", i, id, err)
			}
			if f.ID != uint64(id) {
				t.Fatalf("session %d: reply to %d, want %d", i, f.ID, id)
			}
		}
	}
}
