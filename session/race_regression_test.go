package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSweepDoesNotOrphanAChannelInUse: the idle sweep racing a subscribe
// must not leave the subscriber on a channel state that publishes no longer
// reach (it would wait forever with no error). Found by review: it failed
// within about 9,000 rounds before the fix.
func TestSweepDoesNotOrphanAChannelInUse(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	b := NewMemoryBroker(MemoryBrokerConfig{Now: func() time.Time { return time.Unix(0, clock.Load()) }, SweepInterval: time.Hour})
	defer b.Close()
	n, err := New(Config{Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	for i := 0; i < rounds; i++ {
		b.History(ctx, "ch", HistoryQuery{}) // the channel exists, idle
		clock.Add(int64(2 * time.Hour))      // and past IdleChannelTTL
		s, err := n.NewSession("test")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); b.sweep() }()
		go func() { defer wg.Done(); _ = s.Subscribe(ctx, SubscribeRequest{Channel: "ch"}) }()
		wg.Wait()
		drain(t, s)
		for k := 1; k <= 3; k++ {
			if _, err := n.Publish(ctx, "ch", json.RawMessage(fmt.Sprint(k)), ""); err != nil {
				t.Fatal(err)
			}
		}
		if got := messageData(t, drain(t, s)); len(got) != 3 {
			t.Fatalf("round %d: the subscriber got %v of 3 publications: its channel was orphaned by the sweep", i, got)
		}
		s.Close(Disconnect{})
		clock.Add(int64(2 * time.Hour))
		b.sweep()
	}
}

// slowSubscribeBroker subscribes like Redis: it blocks and honours ctx.
type slowSubscribeBroker struct {
	*MemoryBroker
	release chan struct{}
}

func (b *slowSubscribeBroker) Subscribe(ctx context.Context, ch string) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.MemoryBroker.Subscribe(ctx, ch)
}

// TestFirstSubscriberLeavingDoesNotFailOthers: the broker subscription made
// for a channel's first session serves every session waiting on it, so that
// session's client leaving must not fail the others (client-js drops a
// subscription answered 503 for good). Found by review.
func TestFirstSubscriberLeavingDoesNotFailOthers(t *testing.T) {
	mb := NewMemoryBroker(MemoryBrokerConfig{})
	defer mb.Close()
	sb := &slowSubscribeBroker{mb, make(chan struct{})}
	n, err := New(Config{Broker: sb})
	if err != nil {
		t.Fatal(err)
	}
	leaver, stayer := mustSession(t, n), mustSession(t, n)
	leaving, leave := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- leaver.Subscribe(leaving, SubscribeRequest{Channel: "news"}) }()
	// The second session joins while the first one's broker subscribe is pending.
	second := make(chan error, 1)
	go func() {
		for n.hub.count() == 0 {
			time.Sleep(time.Millisecond)
		}
		second <- stayer.Subscribe(context.Background(), SubscribeRequest{ID: 7, Channel: "news"})
	}()
	time.Sleep(50 * time.Millisecond)
	leave()
	close(sb.release)
	if err := <-second; err != nil {
		t.Fatalf("a session whose own client stayed failed to subscribe: %v", err)
	}
	if err := <-first; err != nil && !errors.Is(err, ErrClosed) {
		t.Logf("the leaving session's subscribe: %v", err)
	}
	drain(t, stayer)
	if _, err := n.Publish(context.Background(), "news", json.RawMessage(`1`), ""); err != nil {
		t.Fatal(err)
	}
	if got := messageData(t, drain(t, stayer)); len(got) != 1 {
		t.Fatalf("the staying session got %v after a publish, want [1]", got)
	}
}
