package session

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// limitCounter is a Metrics with the LimitMetrics capability.
type limitCounter struct {
	NopMetrics
	mu sync.Mutex
	n  map[string]int
}

func (c *limitCounter) Limited(limit string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[limit]++
}

func (c *limitCounter) get(limit string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[limit]
}

func pings(n int) []byte {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(`{"type":"ping","id":1}`)
	}
	return []byte(b.String())
}

func TestCommandRate(t *testing.T) {
	ctx := context.Background()
	// A rate this slow never refills during the test: only the burst counts.
	const burst = 3
	m := &limitCounter{}
	n := newTestNode(t, Config{CommandRate: CommandRate{PerSecond: 1e-6, Burst: burst}, Metrics: m})

	t.Run("over the burst is answered 429 and not run", func(t *testing.T) {
		s := mustSession(t, n)
		frame := string(pings(burst)) + "\n" + `{"type":"subscribe","id":7,"channel":"c"}`
		if err := s.HandleCommand(ctx, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		got := drain(t, s)
		if len(got) != burst+1 {
			t.Fatalf("got %+v", got)
		}
		for _, f := range got[:burst] {
			if f.Type != "reply" {
				t.Fatalf("within the burst: %+v", f)
			}
		}
		if f := got[burst]; f.Type != "error" || f.ID != 7 || f.Code != 429 {
			t.Fatalf("over the burst: %+v", f)
		}
		if len(s.Channels()) != 0 {
			t.Errorf("a refused subscribe ran")
		}
		if m.get(LimitCommands) != 1 {
			t.Errorf("limited(commands) = %d, want 1", m.get(LimitCommands))
		}
	})
	t.Run("an undecodable frame costs a command", func(t *testing.T) {
		s := mustSession(t, n)
		s.HandleCommand(ctx, pings(burst))
		drain(t, s)
		if err := s.HandleCommand(ctx, []byte(`{nope`)); err != nil {
			t.Fatal(err)
		}
		if f := drain(t, s); len(f) != 1 || f[0].Code != 429 {
			t.Fatalf("got %+v", f)
		}
	})
	t.Run("sustained abuse ends the session with 3008", func(t *testing.T) {
		s := mustSession(t, n)
		// burst allowed, then burst refused in a row are tolerated, and the next ends it.
		err := s.HandleCommand(ctx, pings(3*burst+1))
		if !errors.Is(err, DisconnectRateLimited) {
			t.Fatalf("HandleCommand = %v, want %v", err, DisconnectRateLimited)
		}
		// What was answered before still goes out, then the disconnect.
		items, err := s.Next(ctx, 0, nil)
		if err != nil {
			t.Fatalf("Next = %v, want the queued answers first", err)
		}
		got := decodeItems(t, items)
		if len(got) != 2*burst || got[0].Type != "reply" || got[burst-1].Type != "reply" ||
			got[burst].Code != 429 || got[2*burst-1].Code != 429 {
			t.Fatalf("queued before the disconnect: %+v, want %d replies then %d 429s", got, burst, burst)
		}
		if _, err := s.Next(ctx, 0, nil); !errors.Is(err, DisconnectRateLimited) {
			t.Fatalf("Next = %v", err)
		}
		if s.Send([]byte(`{}`)) {
			t.Errorf("a session ended for its rate took another frame")
		}
	})
	t.Run("a failure drops what the rate limit kept", func(t *testing.T) {
		s := mustSession(t, n)
		s.HandleCommand(ctx, pings(3*burst+1))
		s.Fail(ConnectionLost) // the client left: nobody to send the answers to
		if items, err := s.Next(ctx, 0, nil); !errors.Is(err, DisconnectRateLimited) || len(items) != 0 {
			t.Fatalf("Next = %d items, %v; want nothing and the recorded %v", len(items), err, DisconnectRateLimited)
		}
	})
	t.Run("sessions have their own buckets", func(t *testing.T) {
		a, b := mustSession(t, n), mustSession(t, n)
		a.HandleCommand(ctx, pings(burst+1))
		if err := b.HandleCommand(ctx, pings(burst)); err != nil {
			t.Fatal(err)
		}
		for _, f := range drain(t, b) {
			if f.Type != "reply" {
				t.Fatalf("another session's flood limited this one: %+v", f)
			}
		}
	})
	t.Run("unlimited by default", func(t *testing.T) {
		s := mustSession(t, newTestNode(t, Config{}))
		s.HandleCommand(ctx, pings(100))
		for _, f := range drain(t, s) {
			if f.Type != "reply" {
				t.Fatalf("%+v", f)
			}
		}
	})
}

func TestCommandRateValidate(t *testing.T) {
	for _, r := range []CommandRate{{PerSecond: -1}, {PerSecond: 1, Burst: -1}} {
		c := Config{Broker: NewMemoryBroker(MemoryBrokerConfig{}), CommandRate: r}
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", r)
		}
		c.Broker.(*MemoryBroker).Close()
	}
	c := Config{Broker: NewMemoryBroker(MemoryBrokerConfig{}), CommandRate: CommandRate{PerSecond: 2.5}}
	defer c.Broker.(*MemoryBroker).Close()
	if err := c.Validate(); err != nil || c.CommandRate.Burst != 3 {
		t.Errorf("burst from the rate: %+v, %v", c.CommandRate, err)
	}
}

func TestLimitMetrics(t *testing.T) {
	ctx := context.Background()
	m := &limitCounter{}
	n := newTestNode(t, Config{Limits: Limits{MaxChannels: 1}, Metrics: m,
		Namespaces: []Namespace{{Name: "chat", Anonymous: true, ClientPublish: true}}})
	s := mustSession(t, n)
	s.Subscribe(ctx, SubscribeRequest{Channel: "a"})
	s.Subscribe(ctx, SubscribeRequest{Channel: "b"})
	s.Subscribe(ctx, SubscribeRequest{Channel: "a b"})
	n.ClientPublish(ctx, s, "chat:x y", []byte("1"), "")
	if m.get(LimitChannels) != 1 || m.get(LimitChannelName) != 2 {
		t.Errorf("counts %v", m.n)
	}
}
