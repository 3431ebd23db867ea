package redis

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/testclock"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// TestStartsWindow: a start counts for the whole window, and not much past
// it.
func TestStartsWindow(t *testing.T) {
	clock := testclock.New(time.Unix(1_000_000, 0))
	const window = 63 * time.Second // one bucket a second
	s := newStarts(3, window, clock.Now)
	for i := range 3 {
		if !s.Allowed() {
			t.Fatalf("start %d refused under the cap", i+1)
		}
		s.Started()
	}
	if s.Allowed() {
		t.Fatal("a fourth start allowed with a cap of 3")
	}
	clock.Advance(window - time.Millisecond)
	if s.Allowed() {
		t.Fatal("starts left the count before the window passed")
	}
	clock.Advance(time.Second + 2*time.Millisecond)
	if !s.Allowed() {
		t.Fatal("starts still counted a bucket after the window")
	}
	// A long silence empties every bucket.
	s.Started()
	clock.Advance(100 * window)
	for range 3 {
		s.Started()
	}
	if s.Allowed() {
		t.Fatal("the count lost starts after a long silence")
	}
}

// TestChannelStartsCapped: subscribers reading channels Redis holds no
// position for (made-up names) cannot fill Redis. Past MaxChannelStarts a
// read or publish that would start a channel gets session.ErrChannelLimit
// and writes nothing, channels Redis holds go on working, and starts are
// allowed again once the idle channel TTL has passed.
func TestChannelStartsCapped(t *testing.T) {
	url, _ := brokertest.StartRedis(t)
	clock := testclock.New(time.Now())
	b := newTestBroker(t, url, Config{MaxChannelStarts: 2, IdleChannelTTL: time.Hour, now: clock.Now})
	ctx := context.Background()
	keys := func() int64 { return countKeys(t, b, "*") }
	for _, ch := range []string{"made-up-1", "made-up-2"} {
		if _, err := b.History(ctx, ch, session.HistoryQuery{Limit: -1}); err != nil {
			t.Fatalf("history of %s under the cap: %v", ch, err)
		}
	}
	before := keys()
	if _, err := b.History(ctx, "made-up-3", session.HistoryQuery{Limit: -1}); !errors.Is(err, session.ErrChannelLimit) {
		t.Fatalf("history of a third new channel: err %v, want ErrChannelLimit", err)
	}
	if _, err := b.Publish(ctx, "made-up-4", json.RawMessage(`1`), session.PublishOptions{HistorySize: 10}); !errors.Is(err, session.ErrChannelLimit) {
		t.Fatalf("publish to a new channel at the cap: err %v, want ErrChannelLimit", err)
	}
	if after := keys(); after != before {
		t.Fatalf("refused starts wrote to Redis: %d keys, %d before", after, before)
	}
	// The channels Redis holds go on working, reads and publishes.
	res, err := b.Publish(ctx, "made-up-1", json.RawMessage(`1`), session.PublishOptions{HistorySize: 10})
	if err != nil || res.Publication.Offset != 1 {
		t.Fatalf("publish to a held channel at the cap: %+v, %v", res, err)
	}
	h, err := b.History(ctx, "made-up-1", session.HistoryQuery{Limit: -1})
	if err != nil || len(h.Publications) != 1 || h.Top.Epoch != res.Publication.Epoch {
		t.Fatalf("history of a held channel at the cap: %+v, %v", h, err)
	}
	clock.Advance(time.Hour + 2*time.Minute)
	if _, err := b.History(ctx, "made-up-3", session.HistoryQuery{Limit: -1}); err != nil {
		t.Fatalf("history of a new channel once the window passed: %v", err)
	}
}

// TestSubscribeAtChannelStartCap: through a node, a subscribe that would
// start a channel past the cap is refused with the channel limit's reason,
// as on the memory broker, and the session keeps its other subscriptions.
func TestSubscribeAtChannelStartCap(t *testing.T) {
	url, _ := brokertest.StartRedis(t)
	b := newTestBroker(t, url, Config{MaxChannelStarts: 1})
	n, err := session.New(session.Config{Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	s, err := n.NewSession("test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(session.Disconnect{Reason: "test"})
	ctx := context.Background()
	if err := s.Subscribe(ctx, session.SubscribeRequest{Channel: "first"}); err != nil {
		t.Fatalf("first subscribe: %v", err)
	}
	err = s.Subscribe(ctx, session.SubscribeRequest{Channel: "second"})
	if e := session.AsError(err); e == nil || e.Code != session.ErrChannelLimit.Code || !strings.HasSuffix(e.Reason, session.ErrChannelLimit.Reason) {
		t.Fatalf("subscribe past the cap: %v, want the channel limit", err)
	}
	if _, err := n.Publish(ctx, "first", json.RawMessage(`1`), ""); err != nil {
		t.Fatalf("publish to the subscribed channel: %v", err)
	}
}

// TestGenerationChangeIsNotAStart: after the data set's generation moves on
// (a failover, a restart from a snapshot), the channels Redis holds start
// new epochs in place. That adds no key, so it is not a start: a node at
// its start cap goes on publishing to and reading them, and still refuses
// new channels.
func TestGenerationChangeIsNotAStart(t *testing.T) {
	url, _ := brokertest.StartRedis(t)
	b := newTestBroker(t, url, Config{MaxChannelStarts: 2})
	ctx := context.Background()
	before := map[string]string{}
	for _, ch := range []string{"live1", "live2"} {
		res, err := b.Publish(ctx, ch, json.RawMessage(`1`), session.PublishOptions{HistorySize: 10})
		if err != nil {
			t.Fatal(err)
		}
		before[ch] = res.Publication.Epoch
	}
	// What generationLua does when a non-durable master restarts or a
	// replica is promoted.
	if err := b.client.HSet(ctx, b.lineageKey("live1"), "gen", "moved-on").Err(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"live1", "live2"} {
		h, err := b.History(ctx, ch, session.HistoryQuery{Limit: -1})
		if err != nil {
			t.Fatalf("history of %s after the generation change: %v", ch, err)
		}
		if h.Top.Epoch == before[ch] {
			t.Errorf("%s kept its epoch across the generation change", ch)
		}
		res, err := b.Publish(ctx, ch, json.RawMessage(`2`), session.PublishOptions{HistorySize: 10})
		if err != nil {
			t.Fatalf("publish to %s after the generation change: %v", ch, err)
		}
		if res.Publication.Offset != 1 || res.Publication.Epoch != h.Top.Epoch {
			t.Errorf("publish to %s: %+v, want offset 1 in epoch %s", ch, res.Publication.Position(), h.Top.Epoch)
		}
	}
	if _, err := b.History(ctx, "new", session.HistoryQuery{Limit: -1}); !errors.Is(err, session.ErrChannelLimit) {
		t.Fatalf("a new channel at the cap: %v, want ErrChannelLimit", err)
	}
}

// TestQuietSubscribedChannelKeepsItsEpoch: a channel with subscribers on a
// node keeps its position however long it stays quiet: the node extends
// it. Without that, a channel quiet for the idle TTL started a new epoch
// at its next publication, and every subscriber was cut with 3003.
func TestQuietSubscribedChannelKeepsItsEpoch(t *testing.T) {
	const idle = time.Second // extended every 250 ms: margin for a loaded machine
	t.Run("single server", func(t *testing.T) {
		url, _ := brokertest.StartRedis(t)
		quietChannel(t, newTestBroker(t, url, Config{IdleChannelTTL: idle}), idle)
	})
	t.Run("cluster", func(t *testing.T) { // the pipeline's commands go to the masters of their slots
		c := brokertest.StartRedisCluster(t, 3)
		quietChannel(t, newTestBroker(t, "", Config{ClusterAddrs: c.Addrs(), IdleChannelTTL: idle}), idle)
	})
}

func quietChannel(t *testing.T, b *Broker, idle time.Duration) {
	ctx := context.Background()
	recordOn(t, b, "quiet")
	h, err := b.History(ctx, "quiet", session.HistoryQuery{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * idle) // no read, no publication
	res, err := b.Publish(ctx, "quiet", json.RawMessage(`1`), session.PublishOptions{HistorySize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Publication.Position(); got != (session.Position{Epoch: h.Top.Epoch, Offset: 1}) {
		t.Fatalf("first publication after a quiet spell at %+v, want offset 1 of the subscribed epoch %s", got, h.Top.Epoch)
	}
}

// TestReadsDoNotKeepPositions: reads alone do not keep a channel's
// position, so a client that starts channels and keeps reading them (a
// subscribe and a leave, over and over) cannot keep them past the idle TTL
// and grow Redis past the start cap window after window.
func TestReadsDoNotKeepPositions(t *testing.T) {
	url, _ := brokertest.StartRedis(t)
	const idle = time.Second
	b := newTestBroker(t, url, Config{IdleChannelTTL: idle})
	ctx := context.Background()
	started := time.Now()
	chans := []string{"made-up-1", "made-up-2"}
	for _, ch := range chans {
		if _, err := b.History(ctx, ch, session.HistoryQuery{Limit: -1}); err != nil {
			t.Fatal(err)
		}
	}
	// Read them until 0.7 of the TTL: each read would have extended them
	// to a TTL from itself.
	for time.Since(started) < 7*idle/10 {
		for _, ch := range chans {
			if _, err := b.History(ctx, ch, session.HistoryQuery{Limit: -1}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(idle / 10)
	}
	time.Sleep(time.Until(started.Add(idle + idle/5)))
	if n := countKeys(t, b, "*:meta"); n != 0 {
		t.Fatalf("%d positions kept past the idle TTL by reads alone", n)
	}
}

// countKeys counts b's keys matching pattern (after b's prefix).
func countKeys(t *testing.T, b *Broker, pattern string) int64 {
	t.Helper()
	n, err := b.client.Eval(context.Background(), `return #redis.call('KEYS', ARGV[1])`, nil, b.prefix+pattern).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
