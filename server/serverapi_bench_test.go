package server

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	s := newBenchServer(b, session.Namespace{Name: "room", Anonymous: true, Presence: true})
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
	get := func(b *testing.B, path string) int {
		req, _ := http.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		req.Header.Set("Authorization", "Bearer bench-key-0123456789")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		return w.Body.Len()
	}
	for _, path := range []string{"/api/presence?channel=room:big", "/api/presence/stats?channel=room:big"} {
		name, _, _ := strings.Cut(path[len("/api/"):], "?")
		b.Run(name, func(b *testing.B) {
			size := 0
			b.ReportAllocs()
			for b.Loop() {
				size = get(b, path)
			}
			b.ReportMetric(float64(size), "bytes/answer")
		})
	}
}
