package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// waitControls waits until r has received want orders, then one more
// heartbeat-long while, and returns them: an order carried out twice
// shows as one too many.
func waitControls(t *testing.T, r *clusterRecorder, want int, beat time.Duration) []session.Control {
	t.Helper()
	return waitControlsWithin(t, brokertest.WaitTimeout, r, want, beat)
}

func waitControlsWithin(t *testing.T, limit time.Duration, r *clusterRecorder, want int, beat time.Duration) []session.Control {
	t.Helper()
	brokertest.EventuallyWithin(t, limit, func() error {
		if n := len(r.Controls()); n < want {
			return fmt.Errorf("the node received %d orders, want %d", n, want)
		}
		return nil
	})
	time.Sleep(3 * beat)
	got := r.Controls()
	if len(got) != want {
		t.Fatalf("the node received %d orders, want %d: %+v", len(got), want, got)
	}
	return got
}

func disconnectOrder(user string) session.Control {
	return session.Control{Op: session.ControlDisconnect, User: user, At: time.Now().UnixMilli()}
}

// TestControlOrderReachesANodeCutOff: an order given while a node is cut
// off from Redis reaches it once it is back, once, marked late; and an
// order given while it is connected reaches it live, once, although the
// node also reads it from the log.
func TestControlOrderReachesANodeCutOff(t *testing.T) {
	const beat = 100 * time.Millisecond
	a, b, p, _ := proxiedNodes(t, beat)
	ra := a.clusterHandler().(*clusterRecorder)
	ctx := context.Background()

	if err := b.Control(ctx, disconnectOrder("live")); err != nil {
		t.Fatal(err)
	}
	// Once, with its id. (Live or late depends on whether pub/sub beat
	// the grace: TestControlLogReadBeforeLive checks the hold-back.)
	got := waitControls(t, ra, 1, beat)
	if got[0].User != "live" || got[0].ID == "" {
		t.Fatalf("the order given while connected came as %+v, want it with its log id", got[0])
	}

	p.Cut(true)
	if err := b.Control(ctx, disconnectOrder("missed")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * beat)
	if n := len(ra.Controls()); n != 1 {
		t.Fatalf("the cut-off node received %d orders", n)
	}
	p.Restore()
	got = waitControls(t, ra, 2, beat)
	if o := got[1]; o.User != "missed" || !o.Late || o.ID == "" || o.At == 0 {
		t.Fatalf("the order given while cut off came as %+v, want it late, with its id and time", o)
	}
}

// TestControlOrderThroughASilentConnection: a connection that drops what
// it carries and stays open (a proxy or firewall that forgot it) loses the
// live order; the node still gets it from the log, on new connections.
// go-redis gives up a silent pooled connection after its read timeout
// (3 s), one command at a time, so this wait is longer than the others.
func TestControlOrderThroughASilentConnection(t *testing.T) {
	const beat = 100 * time.Millisecond
	a, b, p, _ := proxiedNodes(t, beat)
	ra := a.clusterHandler().(*clusterRecorder)
	waitRead(t, a)
	p.Blackhole(brokertest.ToServer, brokertest.ToClient)
	if err := b.Control(context.Background(), disconnectOrder("u")); err != nil {
		t.Fatal(err)
	}
	got := waitControlsWithin(t, 3*brokertest.WaitTimeout, ra, 1, beat)
	if !got[0].Late || got[0].User != "u" {
		t.Fatalf("order %+v, want u's, late", got[0])
	}
}

// TestControlOrderReachesANodeStartedLater: a node that starts after an
// order was given reads it from the log, as late: its long-poll clients'
// next polls can then meet it (see session's disconnectOrders).
func TestControlOrderReachesANodeStartedLater(t *testing.T) {
	const beat = 100 * time.Millisecond
	url, _ := brokertest.StartRedis(t)
	prefix := "test-" + session.NewEpoch()
	node := func() (*Broker, *clusterRecorder) {
		b := newTestBroker(t, url, Config{Prefix: prefix, Heartbeat: beat})
		r := &clusterRecorder{Recorder: brokertest.NewRecorder(), counts: map[string]int{}}
		b.SetHandler(r)
		b.SetClusterHandler(r)
		return b, r
	}
	a, _ := node()
	if err := a.Control(context.Background(), disconnectOrder("u")); err != nil {
		t.Fatal(err)
	}
	_, rc := node()
	got := waitControls(t, rc, 1, beat)
	if !got[0].Late || got[0].User != "u" {
		t.Fatalf("order %+v, want u's, late", got[0])
	}
}

// waitRead waits until b has read the order log once.
func waitRead(t *testing.T, b *Broker) {
	t.Helper()
	brokertest.Eventually(t, func() error {
		b.fleet.mu.Lock()
		defer b.fleet.mu.Unlock()
		if b.fleet.orders.last == "" {
			return errors.New("the node never read the order log")
		}
		return nil
	})
}

// TestControlLogLost: the log is lost (a flush, a Redis restarted without
// persistence) after the node read an id ahead of the ids Redis makes now
// (its clock had run ahead). New orders then take ids before the node's
// place in the old log, one of them even after it: the log's new epoch has
// the node read the new log from its start, so it misses neither.
func TestControlLogLost(t *testing.T) {
	const beat = 100 * time.Millisecond
	a, b, p, _ := proxiedNodes(t, beat)
	ra := a.clusterHandler().(*clusterRecorder)
	ctx := context.Background()
	if err := b.Control(ctx, disconnectOrder("first")); err != nil {
		t.Fatal(err)
	}
	waitControls(t, ra, 1, beat)
	ahead := fmt.Sprintf("%d-0", time.Now().Add(time.Hour).UnixMilli())
	if err := b.client.XAdd(ctx, &goredis.XAddArgs{Stream: b.ordersKey(), ID: ahead, Values: []any{"o", `{"op":"disconnect","user":"ahead"}`}}).Err(); err != nil {
		t.Fatal(err)
	}
	waitControls(t, ra, 2, beat)
	if err := b.client.Del(ctx, b.ordersKey(), b.ordersEpochKey()).Err(); err != nil { // the log is lost
		t.Fatal(err)
	}
	p.Cut(true)
	if err := b.Control(ctx, disconnectOrder("behind")); err != nil { // an id before a's place
		t.Fatal(err)
	}
	passed := fmt.Sprintf("%d-0", time.Now().Add(2*time.Hour).UnixMilli())
	if err := b.client.XAdd(ctx, &goredis.XAddArgs{Stream: b.ordersKey(), ID: passed, Values: []any{"o", `{"op":"disconnect","user":"passed"}`}}).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * beat)
	p.Restore()
	got := waitControls(t, ra, 4, beat)
	if got[2].User != "behind" || got[3].User != "passed" {
		t.Fatalf("orders %+v, want behind and passed after the loss", got)
	}
}

// TestControlLogReadBeforeLive: a connected node may read an order from
// the log before its pub/sub copy arrives; it waits one read for it, so an
// order it did not miss is carried out live, not late (a late one is
// filtered by time and logged as missed).
func TestControlLogReadBeforeLive(t *testing.T) {
	url, _ := brokertest.StartRedis(t)
	prefix := "test-" + session.NewEpoch()
	a := newTestBroker(t, url, Config{Prefix: prefix, Heartbeat: time.Hour}) // reads by hand below
	ra := &clusterRecorder{Recorder: brokertest.NewRecorder(), counts: map[string]int{}}
	a.SetHandler(ra)
	a.SetClusterHandler(ra)
	waitRead(t, a)
	b := newTestBroker(t, url, Config{Prefix: prefix, Heartbeat: time.Hour})
	ctx := context.Background()
	const n = 20
	for i := range n {
		if err := b.Control(ctx, disconnectOrder("u")); err != nil {
			t.Fatal(err)
		}
		// At once: pub/sub has mostly not delivered yet. The order must
		// wait for it, not be carried out from the log.
		if err := a.readOrders(ctx); err != nil {
			t.Fatal(err)
		}
		waitControlsWithin(t, brokertest.WaitTimeout, ra, i+1, 0)
	}
	if err := a.readOrders(ctx); err != nil { // hands over what is pending, if anything
		t.Fatal(err)
	}
	got := waitControls(t, ra, n, time.Millisecond)
	for _, c := range got {
		if c.Late {
			t.Fatalf("an order given while the node was connected was carried out late: %+v", c)
		}
	}
}

// slowHandler takes per to carry out an order, as runControl does over a
// node with many sessions (about 10 ms at 100,000).
type slowHandler struct {
	*clusterRecorder
	per time.Duration
}

func (h slowHandler) HandleControl(c session.Control) {
	time.Sleep(h.per)
	h.clusterRecorder.HandleControl(c)
}

// TestLateOrdersKeepTheHeartbeat: a node back from a cut carries out the
// orders it missed without pausing its heartbeat, which would have the
// other nodes take it for dead and purge its presence entries.
func TestLateOrdersKeepTheHeartbeat(t *testing.T) {
	const beat = 250 * time.Millisecond // a margin for a loaded machine
	a, b, p, _ := proxiedNodes(t, beat)
	ra := a.clusterHandler().(*clusterRecorder)
	a.fleet.mu.Lock()
	a.fleet.handler = slowHandler{ra, 10 * time.Millisecond}
	a.fleet.mu.Unlock()
	ctx := context.Background()
	waitRead(t, a)
	p.Cut(true)
	const n = 375 // 3.75 s of work, 5 times the bound
	for i := range n {
		if err := b.Control(ctx, disconnectOrder(fmt.Sprint("u", i))); err != nil {
			t.Fatal(err)
		}
	}
	p.Restore()
	brokertest.Eventually(t, func() error {
		if _, err := b.client.ZScore(ctx, b.nodesKey(), a.NodeID()).Result(); err != nil {
			return fmt.Errorf("the node's heartbeat: %w", err)
		}
		return nil
	})
	worst := time.Duration(0)
	for len(ra.Controls()) < n {
		score, err := b.client.ZScore(ctx, b.nodesKey(), a.NodeID()).Result()
		if err != nil {
			t.Fatalf("the node was purged while carrying out late orders: %v", err)
		}
		worst = max(worst, time.Since(time.UnixMilli(int64(score))))
		time.Sleep(20 * time.Millisecond)
	}
	if worst > deadAfter*beat {
		t.Fatalf("the heartbeat was %v old while late orders ran; the others take a node for dead at %v", worst, deadAfter*beat)
	}
}

// TestControlOrderInACluster: on a Redis Cluster the order log lives in
// one slot and the script's PUBLISH reaches the node subscribed on another
// master: the order arrives live, once.
func TestControlOrderInACluster(t *testing.T) {
	const beat = 100 * time.Millisecond
	c := brokertest.StartRedisCluster(t, 3)
	prefix := "test-" + session.NewEpoch()
	var recs []*clusterRecorder
	var nodes []*Broker
	for range 2 {
		b := newTestBroker(t, "", Config{ClusterAddrs: c.Addrs(), Prefix: prefix, Heartbeat: beat})
		r := &clusterRecorder{Recorder: brokertest.NewRecorder(), counts: map[string]int{}}
		b.SetHandler(r)
		b.SetClusterHandler(r)
		waitRead(t, b)
		nodes, recs = append(nodes, b), append(recs, r)
	}
	if err := nodes[0].Control(context.Background(), disconnectOrder("u")); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if got := waitControls(t, r, 1, beat); got[0].User != "u" {
			t.Fatalf("order %+v, want u's, once", got[0])
		}
	}
}

// TestPendingOrderGrace: an order read from the log waits half a heartbeat
// for its pub/sub copy, however soon the next read comes (a read that took
// longer than a heartbeat is followed by one at once), and is dropped when
// the copy came.
func TestPendingOrderGrace(t *testing.T) {
	b := &Broker{}
	b.fleet.heartbeat = 2 * time.Second
	t0 := time.Now()
	b.fleet.orders.pending = []pendingOrder{
		{session.Control{ID: "1-0", User: "missed"}, t0},
		{session.Control{ID: "2-0", User: "live"}, t0},
	}
	if due := b.duePending(t0.Add(time.Millisecond)); len(due) != 0 {
		t.Fatalf("handed over %+v a millisecond after the read", due)
	}
	if !b.firstTime("2-0") { // its pub/sub copy comes
		t.Fatal("2-0 was carried out already")
	}
	due := b.duePending(t0.Add(time.Second))
	if len(due) != 1 || due[0].User != "missed" {
		t.Fatalf("after the grace: %+v, want the one order pub/sub did not bring", due)
	}
	if len(b.fleet.orders.pending) != 0 {
		t.Fatalf("still pending: %+v", b.fleet.orders.pending)
	}
}

// TestControlLogLostKeepsWhatWasCarriedOut: the log is lost (Redis
// restarted without persistence) and an order of the new log is carried
// out live before the node's next read; that read sees the new epoch and
// reads the new log from its start, and does not carry the order out again.
func TestControlLogLostKeepsWhatWasCarriedOut(t *testing.T) {
	url, _ := brokertest.StartRedis(t)
	prefix := "test-" + session.NewEpoch()
	node := func() (*Broker, *clusterRecorder) {
		b := newTestBroker(t, url, Config{Prefix: prefix, Heartbeat: time.Hour}) // reads by hand below
		r := &clusterRecorder{Recorder: brokertest.NewRecorder(), counts: map[string]int{}}
		b.SetHandler(r)
		b.SetClusterHandler(r)
		return b, r
	}
	a, ra := node()
	waitRead(t, a)
	b, _ := node()
	ctx := context.Background()
	read := func() {
		t.Helper()
		if err := a.readOrders(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Control(ctx, disconnectOrder("first")); err != nil {
		t.Fatal(err)
	}
	waitControls(t, ra, 1, 0)
	read()                                                                             // the first log's epoch
	if err := b.client.Del(ctx, b.ordersKey(), b.ordersEpochKey()).Err(); err != nil { // the log is lost
		t.Fatal(err)
	}
	if err := b.Control(ctx, disconnectOrder("after")); err != nil {
		t.Fatal(err)
	}
	waitControls(t, ra, 2, 0) // live
	read()                    // the new epoch: from the start
	a.handOver(a.duePending(time.Now().Add(time.Hour)), true)
	if got := ra.Controls(); len(got) != 2 {
		t.Fatalf("the node carried out %d orders, want 2: %+v", len(got), got)
	}
}

// TestControlLogLongReadGoesOn: a read of the whole log that takes longer
// than its deadline (a heartbeat) goes on from where it stopped at the
// next one, instead of starting over and never finishing.
func TestControlLogLongReadGoesOn(t *testing.T) {
	const orders = 30_000
	url, _ := brokertest.StartRedis(t)
	prefix := "test-" + session.NewEpoch()
	b := newTestBroker(t, url, Config{Prefix: prefix, Heartbeat: time.Hour})
	ctx := context.Background()
	if err := b.Control(ctx, disconnectOrder("epoch")); err != nil { // sets the epoch
		t.Fatal(err)
	}
	epoch, err := b.client.Get(ctx, b.ordersEpochKey()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < orders; k += 10_000 {
		pipe := b.client.Pipeline()
		for i := range 10_000 {
			o := fmt.Sprintf(`{"op":"disconnect","user":"u%d","at":%d}`, k+i, time.Now().UnixMilli())
			pipe.XAdd(ctx, &goredis.XAddArgs{Stream: b.ordersKey(), Values: []any{"o", o, "e", epoch}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a := newTestBroker(t, url, Config{Prefix: prefix, Heartbeat: 10 * time.Millisecond}) // each read: 10 ms
	ra := &clusterRecorder{Recorder: brokertest.NewRecorder(), counts: map[string]int{}}
	a.SetHandler(ra)
	a.SetClusterHandler(ra)
	got := waitControlsWithin(t, 3*brokertest.WaitTimeout, ra, orders+1, 0)
	seen := make(map[string]bool, len(got))
	for _, c := range got {
		if seen[c.ID] {
			t.Fatalf("order %s carried out twice", c.ID)
		}
		seen[c.ID] = true
	}
}
