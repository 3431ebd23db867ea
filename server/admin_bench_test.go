package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/waterspout/waterspout/session"
)

// BenchmarkAdminState is one GET /admin/state through the whole handler
// (routing, origin check, the secret, a gather of the metrics registry, a
// walk over the node's channels, the JSON), on a node holding channels
// channels with one subscriber each (sessions of 100 channels), without the
// network. It reports the answer's size as B/state.
func BenchmarkAdminState(b *testing.B) {
	for _, channels := range []int{0, 1000, 100_000} {
		b.Run(fmt.Sprintf("channels=%d", channels), func(b *testing.B) {
			s := newBenchServer(b, func(c *Config) {
				c.Admin = AdminConfig{SecretFile: adminSecretFile(b, testAdminSecret)}
				c.Limits = session.Limits{MaxChannels: 100}
			})
			for i := 0; i < channels; i += 100 {
				sess, err := s.node.NewSession("bench")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { sess.Close(session.Disconnect{}) })
				for j := i; j < min(i+100, channels); j++ {
					if err := sess.Subscribe(context.Background(), session.SubscribeRequest{Channel: fmt.Sprintf("room:%d", j)}); err != nil {
						b.Fatal(err)
					}
				}
			}
			s.admin.maxAge = 0 // the cost of computing a state, not of the shared one
			h := s.Handler()
			size := 0
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/admin/state", nil)
				req.Header.Set("Authorization", "Bearer "+testAdminSecret)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "B/state")
		})
	}
}
