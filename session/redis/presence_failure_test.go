package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// proxiedNodes returns a node a that reaches Redis through a proxy (to cut
// its connections) and a node b connected directly, sharing a prefix. b's
// heartbeat is an hour: it never takes a for dead during a test, so what
// a's entries become is a's doing alone.
func proxiedNodes(t *testing.T, heartbeat time.Duration) (a, b *Broker, p *brokertest.Proxy, rb *clusterRecorder) {
	srv := brokertest.StartRedisServer(t)
	url := srv.URL()
	p = brokertest.StartProxy(t, srv.Addr())
	prefix := "test-" + session.NewEpoch()
	a = newTestBroker(t, "redis://"+p.Addr()+"/0", Config{Prefix: prefix, Heartbeat: heartbeat})
	b = newTestBroker(t, url, Config{Prefix: prefix, Heartbeat: time.Hour})
	ra := &clusterRecorder{Recorder: brokertest.NewRecorder(), counts: map[string]int{}}
	rb = &clusterRecorder{Recorder: brokertest.NewRecorder(), counts: map[string]int{}}
	a.SetHandler(ra)
	a.SetClusterHandler(ra)
	b.SetHandler(rb)
	b.SetClusterHandler(rb)
	if err := b.Subscribe(context.Background(), "room"); err != nil {
		t.Fatal(err)
	}
	return a, b, p, rb
}

// waitLocal waits until a's local entries number want.
func waitLocal(t *testing.T, a *Broker, want int) {
	t.Helper()
	brokertest.Eventually(t, func() error {
		a.fleet.mu.Lock()
		defer a.fleet.mu.Unlock()
		n := 0
		for _, m := range a.fleet.local {
			n += len(m)
		}
		if n != want {
			return fmt.Errorf("the node holds %d entries, want %d", n, want)
		}
		return nil
	})
}

// waitClients waits until b sees exactly want in ch's presence, each
// entry as "<client>:<user>", sorted.
func waitClients(t *testing.T, b *Broker, ch string, want ...string) {
	t.Helper()
	brokertest.Eventually(t, func() error {
		if got := brokertest.PresenceList(t, b, ch); strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("presence of %s is %v, want %v", ch, got, want)
		}
		return nil
	})
}

// purgeAsDead stops a's heartbeat, so that a test runs a's restore by
// hand, and has b purge a as a dead node: b then sees none of a's entries
// in "room".
func purgeAsDead(t *testing.T, a, b *Broker) {
	t.Helper()
	close(a.fleet.stop)
	a.fleet.wg.Wait()
	if err := b.purgeNode(context.Background(), a.NodeID()); err != nil {
		t.Fatal(err)
	}
	waitClients(t, b, "room")
}

// TestRemovePresenceFailureRetried: a removal that fails (Redis does not
// answer) is not a ghost: the node keeps the entry as leaving and removes
// it, with its leave, at a later heartbeat.
func TestRemovePresenceFailureRetried(t *testing.T) {
	a, b, p, rb := proxiedNodes(t, 200*time.Millisecond)
	ctx := context.Background()
	if _, err := a.AddPresence(ctx, "room", session.ClientInfo{Client: "c1", User: "alice"}, roomOpts); err != nil {
		t.Fatal(err)
	}
	rb.WaitJoinLeaves(t, "room", 1)
	p.Blackhole(brokertest.ToServer, brokertest.ToClient)
	rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := a.RemovePresence(rctx, "room", session.ClientInfo{Client: "c1", User: "alice"}, roomOpts); err == nil {
		t.Fatal("removal through a blackholed connection succeeded")
	}
	waitLocal(t, a, 0)
	waitClients(t, b, "room")
	if got := rb.WaitJoinLeaves(t, "room", 2); got[1] != "leave:c1:alice" {
		t.Fatalf("events %v, want c1's leave", got)
	}
}

// TestAddPresenceReplyLost: when the add's reply is lost after Redis ran
// it, the entry is removed again rather than kept by Redis (and by the
// node, to be restored later) for a subscription that was refused.
func TestAddPresenceReplyLost(t *testing.T) {
	a, b, p, _ := proxiedNodes(t, 200*time.Millisecond)
	ctx := context.Background()
	if _, err := a.AddPresence(ctx, "room", session.ClientInfo{Client: "c0", User: "bob"}, roomOpts); err != nil {
		t.Fatal(err)
	}
	p.Blackhole(brokertest.ToClient) // requests still reach Redis; replies do not
	actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := a.AddPresence(actx, "room", session.ClientInfo{Client: "c1", User: "alice"}, roomOpts); err == nil {
		t.Fatal("add without a reply succeeded")
	}
	// Removed at once, or by the heartbeat's retry when the cleanup met
	// another blackholed connection.
	waitClients(t, b, "room", "c0:bob")
	waitLocal(t, a, 1)
	a.fleet.mu.Lock()
	e, kept := a.fleet.local["room"]["c0"]
	a.fleet.mu.Unlock()
	if !kept || e.leaving {
		t.Fatalf("c0's entry %+v, want it kept as present", e)
	}
}

// TestRestoreFailureKeepsEntries: a node purged as dead that cannot put
// its entries back at once keeps them and puts them back later; they are
// not lost from Redis and from the node for good.
func TestRestoreFailureKeepsEntries(t *testing.T) {
	a, b, p, _ := proxiedNodes(t, 100*time.Millisecond)
	ctx := context.Background()
	for _, c := range []string{"c1", "c2"} {
		if _, err := a.AddPresence(ctx, "room", session.ClientInfo{Client: c, User: "alice"}, roomOpts); err != nil {
			t.Fatal(err)
		}
	}
	purgeAsDead(t, a, b)
	p.Blackhole(brokertest.ToServer, brokertest.ToClient)
	a.restore(true) // times out: Redis does not answer
	a.fleet.mu.Lock()
	kept := len(a.fleet.local["room"])
	a.fleet.mu.Unlock()
	if kept != 2 {
		t.Fatalf("after a failed restore the node holds %d entries, want 2", kept)
	}
	// The next heartbeats' passes, until one gets a connection that
	// answers (the pool may still hold blackholed ones).
	for i := 0; i < 5 && len(brokertest.PresenceList(t, b, "room")) < 2; i++ {
		a.restore(false)
	}
	waitClients(t, b, "room", "c1:alice", "c2:alice")
}

// TestRestoreSkipsClientsThatLeft: a client that leaves while its node
// restores its entries (after the snapshot, before the re-add reaches
// Redis) is not resurrected as a ghost: the node removes it again, with
// its leave.
func TestRestoreSkipsClientsThatLeft(t *testing.T) {
	a, b, _, rb := proxiedNodes(t, 100*time.Millisecond)
	ctx := context.Background()
	if _, err := a.AddPresence(ctx, "room", session.ClientInfo{Client: "c1", User: "alice"}, roomOpts); err != nil {
		t.Fatal(err)
	}
	purgeAsDead(t, a, b)
	restoreSnapshotted = func() {
		if err := a.RemovePresence(ctx, "room", session.ClientInfo{Client: "c1", User: "alice"}, roomOpts); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { restoreSnapshotted = nil })
	a.restore(true)
	restoreSnapshotted = nil
	a.retryRemovals() // the same heartbeat's next step
	waitClients(t, b, "room")
	waitLocal(t, a, 0)
	got := rb.JoinLeaves("room")
	if len(got) == 0 || got[len(got)-1] != "leave:c1:alice" {
		t.Fatalf("events %v, want the resurrected entry's leave last", got)
	}
}

// TestPresenceCount counts a channel's entries (HLEN), for the presence
// command's cap.
func TestPresenceCount(t *testing.T) {
	a, b, _, _ := proxiedNodes(t, time.Hour)
	ctx := context.Background()
	for i, br := range []*Broker{a, b, a} {
		if _, err := br.AddPresence(ctx, "room", session.ClientInfo{Client: "c" + string(rune('0'+i))}, roomOpts); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := b.PresenceCount(ctx, "room"); err != nil || n != 3 {
		t.Fatalf("count %d %v, want 3", n, err)
	}
	if n, err := a.PresenceCount(ctx, "empty"); err != nil || n != 0 {
		t.Fatalf("count of an empty channel %d %v, want 0", n, err)
	}
}
