package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// runServer starts s.Run on a loopback port and returns its base URL and
// the channel Run's result arrives on.
func runServer(t *testing.T, s *Server, ctx context.Context) (string, <-chan error) {
	t.Helper()
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return "http://" + addr.String(), done
}

// startServer runs s until the test ends, and then checks that Run
// returned cleanly. It returns the server's base URL.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	base, done := runServer(t, s, ctx)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return base
}

// newQuietServer is a server of quietConfig.
func newQuietServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(quietConfig())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func quietConfig() Config {
	// Polls detach at once, so that held polls take the hijacked path.
	return Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), PollDetach: time.Millisecond}
}

func TestLivezReadyz(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, path := range []string{"/livez", "/readyz"} {
		if a := do(t, http.MethodGet, ts.URL+path, ""); a.status != 200 || string(a.body) != "ok\n" {
			t.Errorf("%s: %d %q", path, a.status, a.body)
		}
		if a := do(t, http.MethodHead, ts.URL+path, ""); a.status != 200 {
			t.Errorf("HEAD %s: %d", path, a.status)
		}
	}
}

// TestReadyzFollowsRedis: with the Redis broker, /readyz says 503 while
// Redis is down, so a load balancer stops sending clients, and 200 again
// once it is back.
func TestReadyzFollowsRedis(t *testing.T) {
	rs := brokertest.StartRedisServer(t)
	ts := newTestServer(t, func(c *Config) { c.Broker, c.RedisURL = "redis", rs.URL() })
	waitStatus := func(want int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			a := do(t, http.MethodGet, ts.URL+"/readyz", "")
			if a.status == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz stayed %d %q, want %d", a.status, a.body, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitStatus(http.StatusOK)
	rs.Stop()
	waitStatus(http.StatusServiceUnavailable)
	rs.Restart()
	waitStatus(http.StatusOK)
}

// TestReadyzRefusesEvictingRedis: a Redis that may evict WaterSpout's keys
// (maxmemory with allkeys-lru, Debian's commented-out suggestion) loses
// idempotency keys and history, so the node is not ready, and says why,
// until the policy is fixed or the operator opts out.
func TestReadyzRefusesEvictingRedis(t *testing.T) {
	rs := brokertest.StartRedisServerArgs(t, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
	for _, tt := range []struct {
		name          string
		allowEviction bool
		status        int
	}{
		{"by default", false, http.StatusServiceUnavailable},
		{"with --redis-allow-eviction", true, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) {
				c.Broker, c.RedisURL, c.RedisAllowEviction = "redis", rs.URL(), tt.allowEviction
			})
			a := do(t, http.MethodGet, ts.URL+"/readyz", "")
			if a.status != tt.status {
				t.Fatalf("/readyz: %d %q, want %d", a.status, a.body, tt.status)
			}
			if tt.status != http.StatusOK && !strings.Contains(string(a.body), "maxmemory-policy allkeys-lru") {
				t.Fatalf("/readyz does not say why: %q", a.body)
			}
		})
	}
}

func TestShutdownTurnsReadyzOffThenTellsClients(t *testing.T) {
	s := newQuietServer(t)
	base, done := runServer(t, s, context.Background())
	if a := do(t, http.MethodGet, base+"/readyz", ""); a.status != 200 {
		t.Fatalf("readyz before shutdown: %d", a.status)
	}
	// A client session the "transport" keeps open until it has seen the
	// disconnect: Shutdown waits for it, and meanwhile /readyz must say 503.
	sess, err := s.node.NewSession("test")
	if err != nil {
		t.Fatal(err)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	_, err = sess.Next(context.Background(), 10*time.Second, nil)
	var d session.Disconnect
	if !errors.As(err, &d) || d != session.DisconnectShutdown {
		t.Fatalf("session got %v, want the shutdown disconnect", err)
	}
	a := do(t, http.MethodGet, base+"/readyz", "")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(string(a.body), "shutting down") {
		t.Errorf("readyz during shutdown: %d %q", a.status, a.body)
	}
	// API requests still finish while clients are leaving.
	if a := postJSON(t, base+"/api/publish", `{"channel":"c","data":1}`); a.status != 200 {
		t.Errorf("publish during shutdown: %d %s", a.status, a.body)
	}
	if _, err := s.node.NewSession("test"); err == nil {
		t.Errorf("new session accepted during shutdown")
	}
	sess.Close(d)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", strings.TrimPrefix(base, "http://")); err == nil {
		t.Errorf("still listening after shutdown")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestRunReturnsWhenContextEnds(t *testing.T) {
	s := newQuietServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	base, done := runServer(t, s, ctx)
	if a := do(t, http.MethodGet, base+"/livez", ""); a.status != 200 {
		t.Fatalf("livez: %d", a.status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Errorf("Run after shutdown succeeded")
	}
}

func TestShutdownIsBounded(t *testing.T) {
	s := newQuietServer(t)
	_, done := runServer(t, s, context.Background())
	// A session whose transport never closes it: Shutdown gives up when ctx ends.
	sess, err := s.node.NewSession("stuck")
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close(session.Disconnect{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want it to give up", err)
	}
	if err := <-done; err == nil {
		t.Errorf("Run returned nil after an unclean shutdown")
	}
}

func TestListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := quietConfig()
	cfg.Addr = ln.Addr().String()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Errorf("Run on a busy port = %v", err)
	}
}
