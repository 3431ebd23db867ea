package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/session"
)

// BenchmarkPresenceAPI is one GET /api/presence of a channel with 10,000
// subscribers (each a session on the memory broker with a user), through
// the whole handler: it reports the time of one answer (ns/op) and its
// size (bytes/answer). /api/presence/stats is timed beside it.
func BenchmarkPresenceAPI(b *testing.B) {
	const clients = 10_000
	s := newBenchServer(b, func(c *Config) {
		c.Namespaces = []session.Namespace{{Name: "room", Anonymous: true, Presence: true}}
	})
	for i := 0; i < clients; i++ {
		sess, err := s.node.NewSession("bench")
		if err != nil {
			b.Fatal(err)
		}
		sess.SetUser("user-" + strconv.Itoa(i%5000))
		if err := sess.Subscribe(context.Background(), session.SubscribeRequest{Channel: "room:big"}); err != nil {
			b.Fatal(err)
		}
		defer sess.Close(session.ClosedByClient)
	}
	h := s.Handler()
	for _, path := range []string{"/api/presence?channel=room:big", "/api/presence/stats?channel=room:big"} {
		name, _, _ := strings.Cut(path[len("/api/"):], "?")
		b.Run(name, func(b *testing.B) {
			size := 0
			b.ReportAllocs()
			for b.Loop() {
				size = serveBench(b, h, http.MethodGet, path, nil)
			}
			b.ReportMetric(float64(size), "bytes/answer")
		})
	}
}
