package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/session"
)

func memoryBroker(t *testing.T, ts *testServer) *session.MemoryBroker {
	t.Helper()
	b, ok := ts.broker.(*session.MemoryBroker)
	if !ok {
		t.Fatalf("broker is %T, want the memory broker", ts.broker)
	}
	return b
}

// TestAnonymousChannelFloodHoldsNothing is issue 21's subscribe-and-drop
// flood and history reads of unknown channels: once the clients are gone
// the broker holds no channel state for them.
func TestAnonymousChannelFloodHoldsNothing(t *testing.T) {
	ts := newTestServer(t, nil)
	b := memoryBroker(t, ts)
	for i := range 20 {
		sess, err := ts.node.NewSession("test")
		if err != nil {
			t.Fatal(err)
		}
		for j := range 50 {
			ch := fmt.Sprintf("drop-%d-%d", i, j)
			if err := sess.Subscribe(context.Background(), session.SubscribeRequest{Channel: ch}); err != nil {
				t.Fatalf("subscribe %s: %v", ch, err)
			}
		}
		if i%2 == 0 {
			sess.Close(session.Disconnect{})
			continue
		}
		for j := range 50 {
			sess.Unsubscribe(fmt.Sprintf("drop-%d-%d", i, j))
		}
		sess.Close(session.Disconnect{})
	}
	for i := range 200 {
		a := do(t, http.MethodGet, ts.URL+fmt.Sprintf("/api/history?channel=read-%d", i), "")
		if a.status != http.StatusOK {
			t.Fatalf("history: %d %s", a.status, a.body)
		}
	}
	if n := b.ChannelCount(); n != 0 {
		t.Fatalf("%d channel states left after 1000 subscribe-and-drop and 200 history reads, want 0", n)
	}
}

// TestServerChannelCap checks --max-server-channels: a new channel is
// refused with 503 and a reason, on the API and to a subscriber, while
// existing channels keep working.
func TestServerChannelCap(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxServerChannels = 2 })
	sess := subscriber(t, ts.Server, "a", "b")
	a := postJSON(t, ts.URL+"/api/publish", `{"channel":"c","data":1}`)
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.apiErr(t).Reason, "channel limit") {
		t.Fatalf("publish to a new channel at the cap: %d %s, want 503 naming the channel limit", a.status, a.body)
	}
	if a := postJSON(t, ts.URL+"/api/publish", `{"channel":"a","data":1}`); a.status != http.StatusOK {
		t.Fatalf("publish to an existing channel at the cap: %d %s", a.status, a.body)
	}
	counter(t, ts, session.LimitServerChannels, 1, func() {
		err := sess.Subscribe(context.Background(), session.SubscribeRequest{Channel: "d"})
		if e := session.AsError(err); e.Code != 503 || !strings.Contains(e.Reason, "channel limit") {
			t.Fatalf("subscribe to a new channel at the cap: %v, want 503 naming the channel limit", err)
		}
	})
	if !strings.Contains(ts.logs.String(), "channel limit reached") {
		t.Fatalf("the refusal was not logged:\n%s", ts.logs)
	}
	// An operator sees the node at its cap: two channel states of two.
	m := do(t, http.MethodGet, ts.URL+"/metrics", "")
	if !strings.Contains(string(m.body), "\nwaterspout_channel_states 2\n") {
		t.Fatalf("/metrics lacks waterspout_channel_states 2:\n%s", m.body)
	}
}
