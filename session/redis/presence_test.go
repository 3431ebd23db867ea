package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// clusterRecorder is a node's handler: it records join/leave (through the
// brokertest Recorder), control orders and serves fixed channel counts.
type clusterRecorder struct {
	*brokertest.Recorder
	mu       sync.Mutex
	controls []session.Control
	counts   map[string]int
}

func (r *clusterRecorder) HandleControl(c session.Control) {
	r.mu.Lock()
	r.controls = append(r.controls, c)
	r.mu.Unlock()
}

func (r *clusterRecorder) LocalChannels(string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.counts {
		out[k] = v
	}
	return out
}

func (r *clusterRecorder) Controls() []session.Control {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.controls)
}

// twoNodes returns two brokers sharing a prefix on one Redis, as two nodes.
func twoNodes(t *testing.T, heartbeat time.Duration) (a, b *Broker, ra, rb *clusterRecorder) {
	url, _ := brokertest.StartRedis(t)
	prefix := "test-" + session.NewEpoch()
	a = newTestBroker(t, url, Config{Prefix: prefix, Heartbeat: heartbeat})
	b = newTestBroker(t, url, Config{Prefix: prefix, Heartbeat: heartbeat})
	ra = &clusterRecorder{Recorder: brokertest.NewRecorder(), counts: map[string]int{}}
	rb = &clusterRecorder{Recorder: brokertest.NewRecorder(), counts: map[string]int{}}
	for _, x := range []struct {
		b *Broker
		r *clusterRecorder
	}{{a, ra}, {b, rb}} {
		x.b.SetHandler(x.r)
		x.b.SetClusterHandler(x.r)
		if err := x.b.Subscribe(context.Background(), "room"); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, ra, rb
}

var roomOpts = session.PresenceOptions{Max: 100, Notify: 100}

func TestPresenceAcrossNodes(t *testing.T) {
	a, b, ra, rb := twoNodes(t, time.Second)
	ctx := context.Background()
	for _, x := range []struct {
		b      *Broker
		client string
	}{{a, "c1"}, {b, "c2"}} {
		if _, err := x.b.AddPresence(ctx, "room", session.ClientInfo{Client: x.client, User: "u-" + x.client}, roomOpts); err != nil {
			t.Fatal(err)
		}
	}
	for _, br := range []*Broker{a, b} {
		list, err := br.Presence(ctx, "room")
		if err != nil || len(list) != 2 {
			t.Fatalf("presence seen from one node: %v %v, want both clients", list, err)
		}
	}
	// Each node hears both joins, whichever node made them.
	for _, r := range []*clusterRecorder{ra, rb} {
		got := r.WaitJoinLeaves(t, "room", 2)
		if !slices.Equal(got, []string{"join:c1:u-c1", "join:c2:u-c2"}) {
			t.Fatalf("events %v", got)
		}
	}
	// A control order reaches every node, the sender too.
	if err := a.Control(ctx, session.Control{Op: session.ControlDisconnect, User: "u-c2"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*clusterRecorder{ra, rb} {
		if got := waitControls(t, r, 1, time.Millisecond); got[0].User != "u-c2" {
			t.Fatalf("controls %+v", got)
		}
	}
	// Channels: the other node's report arrives with its next heartbeat.
	ra.mu.Lock()
	ra.counts["room"] = 2
	ra.mu.Unlock()
	rb.mu.Lock()
	rb.counts["room"] = 1
	rb.mu.Unlock()
	brokertest.Eventually(t, func() error {
		if got, err := b.Channels(ctx, "ro"); err != nil || got["room"] != 3 {
			return fmt.Errorf("channels %v (%v), want room: 3", got, err)
		}
		return nil
	})
}

// TestDeadNodePurged: a node that stops heartbeating (as a SIGKILLed one
// does) loses its entries within 3 heartbeats plus one, with a leave for
// each, and the other node's entries stay.
func TestDeadNodePurged(t *testing.T) {
	const hb = 100 * time.Millisecond
	a, b, _, rb := twoNodes(t, hb)
	ctx := context.Background()
	a.AddPresence(ctx, "room", session.ClientInfo{Client: "c1", User: "alice"}, roomOpts)
	b.AddPresence(ctx, "room", session.ClientInfo{Client: "c2", User: "bob"}, roomOpts)
	rb.WaitJoinLeaves(t, "room", 2)

	// a dies: its loops stop, and nothing it holds is cleaned up.
	close(a.fleet.stop)
	a.fleet.wg.Wait()
	died := time.Now()
	got := rb.WaitJoinLeaves(t, "room", 3)
	took := time.Since(died)
	if got[2] != "leave:c1:alice" {
		t.Fatalf("events %v, want c1's leave", got)
	}
	list, err := b.Presence(ctx, "room")
	if err != nil || len(list) != 1 || list[0].Client != "c2" {
		t.Fatalf("presence after the purge: %v %v", list, err)
	}
	t.Logf("dead node's entries purged %v after its last heartbeat stopped (heartbeat %v, bound %v)", took, hb, (deadAfter+1)*hb)
}

// TestNodeTakenForDeadRestores: a node purged while alive (a pause longer
// than the bound) puts its entries back at its next heartbeat.
func TestNodeTakenForDeadRestores(t *testing.T) {
	a, b, _, _ := twoNodes(t, 100*time.Millisecond)
	ctx := context.Background()
	a.AddPresence(ctx, "room", session.ClientInfo{Client: "c1", User: "alice"}, roomOpts)
	if err := b.purgeNode(ctx, a.NodeID()); err != nil {
		t.Fatal(err)
	}
	if list, _ := b.Presence(ctx, "room"); len(list) != 0 {
		t.Fatalf("purge left %v", list)
	}
	brokertest.Eventually(t, func() error {
		if list, _ := b.Presence(ctx, "room"); len(list) != 1 || list[0].Client != "c1" {
			return fmt.Errorf("presence %v: the purged node did not restore its entry", list)
		}
		return nil
	})
}

// TestReportWritesChanges: a node's channel report writes the counts that
// changed and deletes the channels gone, not the whole hash each time.
func TestReportWritesChanges(t *testing.T) {
	a, b, ra, _ := twoNodes(t, time.Hour) // one heartbeat, at start
	ctx := context.Background()
	// Wait for the start's heartbeat to report (nothing yet), so that it
	// does not race with the reports below.
	brokertest.Eventually(t, func() error {
		a.fleet.mu.Lock()
		defer a.fleet.mu.Unlock()
		if a.fleet.reported == nil {
			return errors.New("no heartbeat report")
		}
		return nil
	})
	key := a.nodeChannelsKey(a.NodeID())
	ra.mu.Lock()
	ra.counts = map[string]int{"room:1": 1, "room:2": 2}
	ra.mu.Unlock()
	if err := a.report(ctx); err != nil {
		t.Fatal(err)
	}
	// A field no report wrote: a full rewrite (DEL + HSET) would drop it.
	if err := b.client.HSet(ctx, key, "marker", 7).Err(); err != nil {
		t.Fatal(err)
	}
	ra.mu.Lock()
	ra.counts = map[string]int{"room:1": 3}
	ra.mu.Unlock()
	for range 2 { // a change, then none
		if err := a.report(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := b.client.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["room:1"] != "3" || got["marker"] != "7" {
			t.Fatalf("report hash %v, want room:1=3 and the untouched marker", got)
		}
	}
	chans, err := b.Channels(ctx, "room:")
	if err != nil || chans["room:1"] != 3 || len(chans) != 1 {
		t.Fatalf("channels %v %v, want room:1 with 3", chans, err)
	}
}

// TestPollLeaseAcrossNodes: a long-poll client whose next poll goes to
// another node stays listed, with no leave and join: the first node's lease
// finds the entry refreshed by the second, and the first node's death does
// not purge it. The second node's lease removes it.
func TestPollLeaseAcrossNodes(t *testing.T) {
	const hb = 100 * time.Millisecond
	a, b, _, rb := twoNodes(t, hb)
	ctx := context.Background()
	alice := session.ClientInfo{Client: "p1", User: "alice"}
	if _, err := a.RefreshPresence(ctx, "room", alice, "s1", roomOpts); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RefreshPresence(ctx, "room", alice, "s2", roomOpts); err != nil {
		t.Fatal(err)
	}
	if err := a.ExpirePresence(ctx, "room", alice, "s1", roomOpts); err != nil {
		t.Fatal(err)
	}
	a.fleet.mu.Lock()
	kept := len(a.fleet.local["room"])
	a.fleet.mu.Unlock()
	if kept != 0 {
		t.Fatalf("node a still records %d entries of a client that moved on", kept)
	}
	// a dies: b purges it, which must leave the moved entry alone.
	close(a.fleet.stop)
	a.fleet.wg.Wait()
	if _, err := b.AddPresence(ctx, "room", session.ClientInfo{Client: "c2", User: "bob"}, roomOpts); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, func() error {
		if n, err := b.client.ZScore(ctx, b.nodesKey(), a.NodeID()).Result(); err == nil { // gone from the set: purged
			return fmt.Errorf("node a was not purged (%v)", n)
		}
		return nil
	})
	list, err := b.Presence(ctx, "room")
	if err != nil || len(list) != 2 {
		t.Fatalf("presence after a's purge: %v %v, want p1 and c2", list, err)
	}
	if err := b.ExpirePresence(ctx, "room", alice, "s2", roomOpts); err != nil {
		t.Fatal(err)
	}
	want := []string{"join:p1:alice", "join:c2:bob", "leave:p1:alice"}
	if got := rb.WaitJoinLeaves(t, "room", 3); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// TestNodesListsTheLiveNodes: each node sees both, itself marked, by the
// heartbeats they write; a node that closed is gone.
func TestNodesListsTheLiveNodes(t *testing.T) {
	a, b, _, _ := twoNodes(t, 100*time.Millisecond)
	ctx := context.Background()
	brokertest.Eventually(t, func() error {
		for _, x := range []*Broker{a, b} {
			nodes, err := x.Nodes(ctx)
			if err != nil {
				return err
			}
			ids := map[string]bool{}
			for _, n := range nodes {
				ids[n.ID] = n.Self
				if n.Heartbeat.IsZero() {
					return fmt.Errorf("node %s without a heartbeat time", n.ID)
				}
			}
			if len(nodes) != 2 || ids[x.NodeID()] != true || len(ids) != 2 {
				return fmt.Errorf("node %s sees %+v, want both nodes, itself marked", x.NodeID(), nodes)
			}
		}
		return nil
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, func() error {
		nodes, err := b.Nodes(ctx)
		if err != nil {
			return err
		}
		if len(nodes) != 1 || nodes[0].ID != b.NodeID() {
			return fmt.Errorf("after a closed, b sees %+v", nodes)
		}
		return nil
	})
}
