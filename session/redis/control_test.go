package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

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
	got := waitControls(t, ra, 1, beat)
	if got[0].User != "live" || got[0].Late || got[0].ID == "" {
		t.Fatalf("the order given while connected came as %+v, want live with its log id", got[0])
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
