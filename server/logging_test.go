package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/internal/testclock"
	"github.com/waterspout/waterspout/internal/wiretest"
)

func TestRequestLogRedactsTokens(t *testing.T) {
	ts := newTestServer(t, nil)
	do(t, http.MethodGet, ts.URL+"/api/history?channel=a&token=super-secret-token", "")
	do(t, http.MethodGet, ts.URL+"/?token=another-secret", "")
	do(t, http.MethodGet, ts.URL+"/api/history?channel=a&api_key=key-in-url&access_token=third-secret", "")
	logs := ts.logs.String()
	for _, secret := range []string{"super-secret-token", "another-secret", "key-in-url", "third-secret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, "token=REDACTED") {
		t.Errorf("request not logged:\n%s", logs)
	}
}

func TestNewLogger(t *testing.T) {
	var b strings.Builder
	log, err := NewLogger(&b, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	if strings.Contains(b.String(), "hidden") || !strings.Contains(b.String(), `"msg":"shown"`) {
		t.Errorf("got %q", b.String())
	}
	if _, err := NewLogger(&b, "info", "xml"); err == nil {
		t.Errorf("xml accepted")
	}
}

func TestIPExtractor(t *testing.T) {
	tests := []struct {
		name    string
		proxies []string
		remote  string
		xff     string
		want    string
	}{
		{"direct ignores XFF", nil, "203.0.113.1:5000", "198.51.100.9", "203.0.113.1"},
		{"direct ignores XFF from a private peer", nil, "10.0.0.2:5000", "198.51.100.9", "10.0.0.2"},
		{"trusted proxy", []string{"10.0.0.0/8"}, "10.0.0.2:5000", "198.51.100.9", "198.51.100.9"},
		{"untrusted peer", []string{"10.0.0.0/8"}, "192.168.1.2:5000", "198.51.100.9", "192.168.1.2"},
		{"spoofed chain", []string{"10.0.0.0/8"}, "10.0.0.2:5000", "1.1.1.1, 198.51.100.9", "198.51.100.9"},
		{"single address", []string{"10.0.0.2"}, "10.0.0.2:5000", "198.51.100.9", "198.51.100.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			r.Header.Set(echo.HeaderXForwardedFor, tt.xff)
			if got := ipExtractor(tt.proxies)(r); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestRequestLogLevels is issue 21 item 8: a successful publish is logged
// at debug (a backend publishes thousands a second), a refused request at
// warn, and the start still at info.
func TestRequestLogLevels(t *testing.T) {
	var logs syncBuffer
	ts := newTestServer(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	for range 3 {
		if a := postJSON(t, ts.URL+"/api/publish", `{"channel":"news","data":1}`); a.status != 200 {
			t.Fatalf("publish: %d %s", a.status, a.body)
		}
	}
	do(t, http.MethodGet, ts.URL+"/", "")
	if strings.Contains(logs.String(), "msg=request") {
		t.Errorf("successful requests logged at info:\n%s", logs.String())
	}
	postJSON(t, ts.URL+"/api/publish", `{"channel":"news feed","data":1}`)
	if !strings.Contains(logs.String(), "level=WARN msg=\"request refused\"") || !strings.Contains(logs.String(), "status=400") {
		t.Errorf("a refused publish is not logged at warn:\n%s", logs.String())
	}

	var started syncBuffer
	s, err := New(Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&started, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	wiretest.Eventually(t, "the listening log line", func() bool { return strings.Contains(started.String(), "msg=listening") })
	cancel()
	<-done
	for _, msg := range []string{"msg=listening", `msg="shutting down"`} {
		if !strings.Contains(started.String(), msg) {
			t.Errorf("log at info lacks %s:\n%s", msg, started.String())
		}
	}
}

// TestRefusalLogBounded: refused requests are what a hostile client makes
// as fast as it likes, one WARN line each. Their lines are bounded per
// address and in all; the rest go to debug, and the next line logged at
// warn says how many did. Another address's refusals are still logged.
func TestRefusalLogBounded(t *testing.T) {
	var logs syncBuffer
	clock := testclock.New(time.Now())
	ts := newTestServer(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		c.APIKeys = []string{testAPIKey}
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	fake := newRefusalLog(clock.Now) // the routes hold ts.refusals: give it the fake clock's limiters
	ts.refusals.perAddr, ts.refusals.all = fake.perAddr, fake.all
	refuse := func(addr string) {
		t.Helper()
		a := do(t, http.MethodPost, ts.URL+"/api/publish", `{"channel":"news","data":1}`,
			"Content-Type", "application/json", "Authorization", "Bearer not-the-key", "X-Forwarded-For", addr)
		// 401, then 429 once the address has used up its failed
		// credentials (TestCredentialFailuresLimited): refusals both.
		if a.status != http.StatusUnauthorized && a.status != http.StatusTooManyRequests {
			t.Fatalf("publish with a wrong key: %d", a.status)
		}
	}
	warnLines := func(addr string) []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, `msg="request refused"`) && strings.Contains(l, "remote="+addr) {
				out = append(out, l)
			}
		}
		return out
	}
	const flood = 500
	for range flood {
		refuse("198.51.100.7")
	}
	if got := len(warnLines("198.51.100.7")); got != refusalLogBurst {
		t.Fatalf("%d refusals from one address wrote %d WARN lines, want %d", flood, got, refusalLogBurst)
	}
	refuse("203.0.113.9")
	other := warnLines("203.0.113.9")
	if len(other) != 1 || !strings.Contains(other[0], fmt.Sprintf("suppressed=%d", flood-refusalLogBurst)) {
		t.Fatalf("another address's refusal: %q, want one line saying suppressed=%d", other, flood-refusalLogBurst)
	}
	clock.Advance(time.Second / refusalLogRate)
	refuse("198.51.100.7")
	if got := len(warnLines("198.51.100.7")); got != refusalLogBurst+1 {
		t.Fatalf("after a second: %d WARN lines, want %d", got, refusalLogBurst+1)
	}
}
