package session

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu   sync.Mutex
	pubs []*Publication
}

func (r *recorder) HandlePublication(p *Publication) {
	r.mu.Lock()
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
}
func (r *recorder) HandleGap(string) {}

func opts(size int, ttl time.Duration) PublishOptions {
	return PublishOptions{HistorySize: size, HistoryTTL: ttl, KeyTTL: max(ttl, MinKeyTTL)}
}

func TestMemoryBrokerOffsetsAndEpochs(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(MemoryBrokerConfig{})
	defer b.Close()
	var first string
	for i := 1; i <= 5; i++ {
		res, err := b.Publish(ctx, "a", json.RawMessage(`1`), opts(10, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if res.Offset != uint64(i) {
			t.Fatalf("offset %d, want %d", res.Offset, i)
		}
		if first == "" {
			first = res.Epoch
		} else if res.Epoch != first {
			t.Fatalf("epoch changed within one history: %q → %q", first, res.Epoch)
		}
	}
	other, _ := b.Publish(ctx, "b", json.RawMessage(`1`), opts(10, time.Minute))
	if other.Offset != 1 {
		t.Fatalf("offsets are per channel: b got %d", other.Offset)
	}
	// A restarted memory broker has lost history: a new epoch says so.
	b2 := NewMemoryBroker(MemoryBrokerConfig{})
	defer b2.Close()
	res, _ := b2.Publish(ctx, "a", json.RawMessage(`1`), opts(10, time.Minute))
	if res.Epoch == first {
		t.Fatal("a new broker reused the epoch of a lost history")
	}
	if !ValidEpoch(res.Epoch) {
		t.Fatalf("epoch %q is not URL-safe", res.Epoch)
	}
}

func TestMemoryBrokerConcurrentOffsetsAreDense(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(MemoryBrokerConfig{})
	defer b.Close()
	rec := &recorder{}
	b.SetHandler(rec)
	if err := b.Subscribe(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if _, err := b.Publish(ctx, "c", json.RawMessage(`0`), opts(2000, time.Minute)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(rec.pubs) != 1600 {
		t.Fatalf("delivered %d, want 1600", len(rec.pubs))
	}
	for i, p := range rec.pubs {
		if p.Offset != uint64(i+1) {
			t.Fatalf("delivery %d has offset %d: not dense and in order", i, p.Offset)
		}
	}
}

func TestMemoryBrokerHistoryWindow(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(MemoryBrokerConfig{})
	defer b.Close()
	var epoch string
	for i := 0; i < 10; i++ {
		r, _ := b.Publish(ctx, "h", json.RawMessage(`0`), opts(4, time.Minute))
		epoch = r.Epoch
	}
	tests := []struct {
		name        string
		since       *Position
		limit       int
		recoverable bool
		offsets     []uint64
	}{
		{"all retained", nil, -1, false, []uint64{7, 8, 9, 10}},
		{"limit", nil, 2, false, []uint64{7, 8}},
		{"since inside window", &Position{epoch, 8}, -1, true, []uint64{9, 10}},
		{"since just before window", &Position{epoch, 6}, -1, true, []uint64{7, 8, 9, 10}},
		{"since at top", &Position{epoch, 10}, -1, true, nil},
		{"since left the window", &Position{epoch, 5}, -1, false, nil},
		{"wrong epoch", &Position{"other", 8}, -1, false, nil},
		{"from the future", &Position{epoch, 11}, -1, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := b.History(ctx, "h", HistoryQuery{Since: tt.since, Limit: tt.limit})
			if err != nil {
				t.Fatal(err)
			}
			if res.Top != (Position{epoch, 10}) {
				t.Fatalf("top %v", res.Top)
			}
			if res.Recoverable != tt.recoverable {
				t.Fatalf("recoverable %v, want %v", res.Recoverable, tt.recoverable)
			}
			var got []uint64
			for _, p := range res.Publications {
				got = append(got, p.Offset)
			}
			if len(got) != len(tt.offsets) {
				t.Fatalf("offsets %v, want %v", got, tt.offsets)
			}
			for i := range got {
				if got[i] != tt.offsets[i] {
					t.Fatalf("offsets %v, want %v", got, tt.offsets)
				}
			}
		})
	}
}

func TestMemoryBrokerHistoryTTLAndIdleChannels(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b := NewMemoryBroker(MemoryBrokerConfig{Now: clock, IdleChannelTTL: time.Hour, SweepInterval: time.Hour})
	defer b.Close()

	first, _ := b.Publish(ctx, "t", json.RawMessage(`1`), opts(10, time.Minute))
	advance(30 * time.Second)
	b.Publish(ctx, "t", json.RawMessage(`2`), opts(10, time.Minute))
	advance(45 * time.Second) // the first is now 75 s old, the second 45 s

	res, _ := b.History(ctx, "t", HistoryQuery{Limit: -1})
	if len(res.Publications) != 1 || res.Publications[0].Offset != 2 {
		t.Fatalf("after TTL want only offset 2, got %d publications", len(res.Publications))
	}
	res, _ = b.History(ctx, "t", HistoryQuery{Since: &Position{first.Epoch, 0}, Limit: -1})
	if res.Recoverable {
		t.Fatal("a position whose successor expired was reported recoverable")
	}
	// Once history is empty, the position is still known: a client at the top recovers.
	advance(time.Minute)
	res, _ = b.History(ctx, "t", HistoryQuery{Since: &Position{first.Epoch, 2}, Limit: -1})
	if !res.Recoverable || res.Top.Offset != 2 {
		t.Fatalf("client at top of an expired history: %+v", res)
	}
	// Idle past IdleChannelTTL, the channel is forgotten and restarts with a new epoch.
	advance(2 * time.Hour)
	b.sweep()
	if b.ChannelCount() != 0 {
		t.Fatalf("%d channel states after the idle sweep, want 0", b.ChannelCount())
	}
	// A client that saw t empty, before offsets 1 and 2, must not be told
	// it missed nothing now that t is forgotten.
	res, _ = b.History(ctx, "t", HistoryQuery{Since: &Position{first.Epoch, 0}, Limit: -1})
	if res.Recoverable || res.Top.Epoch == first.Epoch {
		t.Fatalf("a position from before forgotten publications: %+v, want a new epoch and not recoverable", res)
	}
	again, _ := b.Publish(ctx, "t", json.RawMessage(`3`), opts(10, time.Minute))
	if again.Epoch == first.Epoch || again.Offset != 1 {
		t.Fatalf("forgotten channel kept epoch %q / offset %d", again.Epoch, again.Offset)
	}
}

func TestMemoryBrokerIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	b := NewMemoryBroker(MemoryBrokerConfig{Now: func() time.Time { return now }})
	defer b.Close()
	rec := &recorder{}
	b.SetHandler(rec)
	b.Subscribe(ctx, "k")
	o := opts(10, time.Minute)
	o.Key = "order-42"
	a, _ := b.Publish(ctx, "k", json.RawMessage(`{"n":1}`), o)
	d, _ := b.Publish(ctx, "k", json.RawMessage(`{"n":2}`), o)
	if a.Duplicate || !d.Duplicate || d.Offset != a.Offset || d.Epoch != a.Epoch || string(d.Data) != `{"n":1}` {
		t.Fatalf("repeat key: first %+v, second %+v", a, d)
	}
	if len(rec.pubs) != 1 {
		t.Fatalf("repeat key delivered %d times", len(rec.pubs))
	}
	// Keys are per channel.
	other, _ := b.Publish(ctx, "k2", json.RawMessage(`1`), o)
	if other.Duplicate {
		t.Fatal("key leaked across channels")
	}
	// Past the key TTL the key is forgotten.
	now = now.Add(MinKeyTTL + time.Second)
	late, _ := b.Publish(ctx, "k", json.RawMessage(`{"n":3}`), o)
	if late.Duplicate || late.Offset != 2 {
		t.Fatalf("expired key still deduplicated: %+v", late)
	}
}

// TestMemoryBrokerForgetsUnusedChannels is the subscribe-and-drop flood of
// distinct channel names (and the history read of unknown ones): nothing
// may stay behind, and a client that saw such a channel empty still
// resumes it as recovered.
func TestMemoryBrokerForgetsUnusedChannels(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(MemoryBrokerConfig{SweepInterval: time.Hour})
	defer b.Close()
	const n = 2000
	for i := range n {
		ch := fmt.Sprintf("flood-%d", i)
		if err := b.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if got := b.ChannelCount(); got != 1 {
			t.Fatalf("subscribed channel %s: %d channel states, want 1", ch, got)
		}
		if err := b.Unsubscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if _, err := b.History(ctx, fmt.Sprintf("read-%d", i), HistoryQuery{Limit: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.ChannelCount(); got != 0 {
		t.Fatalf("after %d subscribe-and-drop cycles and history reads: %d channel states held, want 0", n, got)
	}

	// The position a subscriber got from an empty channel still resumes
	// once the channel is forgotten, and a publication made since is found.
	b.Subscribe(ctx, "quiet")
	seen, _ := b.History(ctx, "quiet", HistoryQuery{Limit: -1})
	b.Unsubscribe(ctx, "quiet")
	res, _ := b.History(ctx, "quiet", HistoryQuery{Since: &seen.Top, Limit: -1})
	if !res.Recoverable || res.Top != seen.Top {
		t.Fatalf("resume at %v of a forgotten empty channel: %+v, want recoverable at the same position", seen.Top, res)
	}
	p, _ := b.Publish(ctx, "quiet", json.RawMessage(`1`), opts(10, time.Minute))
	res, _ = b.History(ctx, "quiet", HistoryQuery{Since: &seen.Top, Limit: -1})
	if !res.Recoverable || len(res.Publications) != 1 || res.Publications[0] != p.Publication {
		t.Fatalf("resume at %v after one publication: %+v, want it recovered", seen.Top, res)
	}
}

// TestMemoryBrokerChannelCap checks the behaviour at MaxChannels: a new
// channel is refused with ErrChannelLimit, existing ones keep working, and
// room made by a channel that ends is usable again.
func TestMemoryBrokerChannelCap(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(MemoryBrokerConfig{MaxChannels: 2, SweepInterval: time.Hour})
	defer b.Close()
	if err := b.Subscribe(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "b", json.RawMessage(`1`), opts(10, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx, "c"); err != ErrChannelLimit {
		t.Fatalf("subscribe over the cap: %v, want ErrChannelLimit", err)
	}
	if _, err := b.Publish(ctx, "c", json.RawMessage(`1`), opts(10, time.Minute)); err != ErrChannelLimit {
		t.Fatalf("publish to a new channel over the cap: %v, want ErrChannelLimit", err)
	}
	if res, err := b.Publish(ctx, "a", json.RawMessage(`1`), opts(10, time.Minute)); err != nil || res.Offset != 1 {
		t.Fatalf("publish to an existing channel at the cap: %+v, %v", res, err)
	}
	if err := b.Subscribe(ctx, "b"); err != nil {
		t.Fatalf("subscribe to an existing channel at the cap: %v", err)
	}
	if res, err := b.History(ctx, "c", HistoryQuery{Limit: -1}); err != nil || res.Top.Offset != 0 {
		t.Fatalf("history of an unknown channel at the cap: %+v, %v", res, err)
	}
	if AsError(ErrChannelLimit).Code != 503 {
		t.Fatalf("ErrChannelLimit code %d, want 503", AsError(ErrChannelLimit).Code)
	}
	b.Unsubscribe(ctx, "b") // b keeps its history, so it stays
	if err := b.Subscribe(ctx, "c"); err != ErrChannelLimit {
		t.Fatalf("subscribe over the cap after an unsubscribe from a channel with history: %v", err)
	}
	// At the cap, positions of channels with nothing retained give way:
	// the sweep forgets them, and a client resuming one is told
	// recovered: false.
	b3 := NewMemoryBroker(MemoryBrokerConfig{MaxChannels: 2, SweepInterval: time.Hour})
	defer b3.Close()
	noHistory := opts(0, time.Minute)
	pa, _ := b3.Publish(ctx, "a", json.RawMessage(`1`), noHistory)
	b3.Publish(ctx, "b", json.RawMessage(`1`), noHistory)
	if err := b3.Subscribe(ctx, "c"); err != ErrChannelLimit {
		t.Fatalf("subscribe over a cap held by positions: %v, want ErrChannelLimit", err)
	}
	b3.sweep()
	if n := b3.ChannelCount(); n != 0 {
		t.Fatalf("sweep at the cap left %d channels with nothing retained, want 0", n)
	}
	if err := b3.Subscribe(ctx, "c"); err != nil {
		t.Fatalf("subscribe after the sweep at the cap: %v", err)
	}
	if res, _ := b3.History(ctx, "a", HistoryQuery{Since: &Position{pa.Epoch, 1}, Limit: -1}); res.Recoverable {
		t.Fatalf("resume in a channel forgotten at the cap: %+v, want not recoverable", res)
	}
	b2 := NewMemoryBroker(MemoryBrokerConfig{MaxChannels: 1, SweepInterval: time.Hour})
	defer b2.Close()
	b2.Subscribe(ctx, "x")
	b2.Unsubscribe(ctx, "x")
	if err := b2.Subscribe(ctx, "y"); err != nil {
		t.Fatalf("subscribe after the only channel ended: %v", err)
	}
}
