package session

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
)

// newTestNode returns a node on a fresh memory broker, closed with the test.
func newTestNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	b := NewMemoryBroker(MemoryBrokerConfig{})
	t.Cleanup(func() { b.Close() })
	cfg.Broker = b
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// drain reads what the session has queued right now, without waiting.
func drain(t testing.TB, s *Session) []wire.Frame {
	t.Helper()
	items, err := s.Next(context.Background(), time.Millisecond, nil)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return decodeItems(t, items)
}

func decodeItems(t testing.TB, items []Item) []wire.Frame {
	t.Helper()
	out := make([]wire.Frame, 0, len(items))
	for _, it := range items {
		var f wire.Frame
		if err := json.Unmarshal(it.Frame, &f); err != nil {
			t.Fatalf("bad frame %s: %v", it.Frame, err)
		}
		out = append(out, f)
	}
	return out
}

func publishN(t testing.TB, n *Node, ch string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := n.Publish(context.Background(), ch, json.RawMessage(fmt.Sprint(i)), ""); err != nil {
			t.Fatal(err)
		}
	}
}

func mustSession(t testing.TB, n *Node) *Session {
	t.Helper()
	s, err := n.NewSession("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(Disconnect{}) })
	return s
}

// messageData returns the integer payloads of the message frames, in order.
func messageData(t testing.TB, fs []wire.Frame) []int {
	t.Helper()
	var out []int
	for _, f := range fs {
		if f.Type != "message" {
			continue
		}
		var v int
		if err := json.Unmarshal(f.Data, &v); err != nil {
			t.Fatalf("data %s: %v", f.Data, err)
		}
		out = append(out, v)
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}
