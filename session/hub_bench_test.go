package session

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

var benchData = json.RawMessage(`{"text":"a typical small notification payload","id":12345}`)

// BenchmarkHubPublish measures one publication to a channel with n local
// sessions, through the memory broker and the hub, up to each session's
// writer taking it with Next: the server-side cost of a fan-out without the
// network. One op is one publication; deliveries/s counts sessions reached.
func BenchmarkHubPublish(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			node := newTestNode(b, Config{})
			ctx := context.Background()
			sessions := make([]*Session, n)
			bufs := make([][]Item, n)
			for i := range sessions {
				sessions[i] = mustSession(b, node)
				if err := sessions[i].Subscribe(ctx, SubscribeRequest{ID: 1, Channel: "bench"}); err != nil {
					b.Fatal(err)
				}
				bufs[i] = nextItems(b, sessions[i], bufs[i]) // the subscribed frame
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := node.Publish(ctx, "bench", benchData, ""); err != nil {
					b.Fatal(err)
				}
				for i, s := range sessions {
					bufs[i] = nextItems(b, s, bufs[i])
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkNextBatch measures how a session's writer takes k queued
// messages in one Next, as a transport does when publications arrive
// faster than it writes: one op is k publications and one Next.
func BenchmarkNextBatch(b *testing.B) {
	for _, k := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("queued=%d", k), func(b *testing.B) {
			node := newTestNode(b, Config{})
			ctx := context.Background()
			s := mustSession(b, node)
			if err := s.Subscribe(ctx, SubscribeRequest{ID: 1, Channel: "bench"}); err != nil {
				b.Fatal(err)
			}
			buf := nextItems(b, s, nil)
			b.ReportAllocs()
			for b.Loop() {
				for range k {
					if _, err := node.Publish(ctx, "bench", benchData, ""); err != nil {
						b.Fatal(err)
					}
				}
				if buf = nextItems(b, s, buf); len(buf) != k {
					b.Fatalf("Next returned %d items, want %d", len(buf), k)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k), "ns/message")
		})
	}
}

// nextItems takes what the session has queued, failing on a disconnect or
// an empty batch.
func nextItems(b *testing.B, s *Session, buf []Item) []Item {
	items, err := s.Next(context.Background(), time.Second, buf)
	if err != nil {
		b.Fatalf("Next: %v", err)
	}
	if len(items) == 0 {
		b.Fatal("Next: nothing queued")
	}
	return items
}
