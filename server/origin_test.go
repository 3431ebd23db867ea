package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestOriginPolicy(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		host    string // request Host
		origin  string // "" sends none
		want    bool
	}{
		{"no origin header", nil, "push.example.com", "", true},
		{"same origin", nil, "push.example.com", "https://push.example.com", true},
		{"same origin with port", nil, "127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"same host other port", nil, "127.0.0.1:8080", "http://127.0.0.1:9090", false},
		{"same origin default port", nil, "push.example.com:443", "https://push.example.com", true},
		{"same origin behind a TLS proxy", nil, "push.example.com", "https://push.example.com", true},
		{"host case", nil, "Push.Example.com", "https://push.example.COM", true},
		{"unlisted", nil, "push.example.com", "https://evil.example", false},
		{"null origin", nil, "push.example.com", "null", false},
		{"listed", []string{"https://app.example.com"}, "push.example.com", "https://app.example.com", true},
		{"listed with default port", []string{"https://app.example.com:443"}, "push.example.com", "https://app.example.com", true},
		{"listed, trailing slash", []string{"https://app.example.com/"}, "push.example.com", "https://app.example.com", true},
		{"listed, other scheme", []string{"https://app.example.com"}, "push.example.com", "http://app.example.com", false},
		{"listed, other port", []string{"https://app.example.com"}, "push.example.com", "https://app.example.com:8443", false},
		{"unlisted beside listed", []string{"https://app.example.com"}, "push.example.com", "https://evil.example", false},
		{"suffix is not a match", []string{"https://app.example.com"}, "push.example.com", "https://app.example.com.evil.example", false},
		{"wildcard subdomain", []string{"https://*.example.com"}, "push.example.net", "https://a.b.example.com", true},
		{"wildcard needs a label", []string{"https://*.example.com"}, "push.example.net", "https://example.com", false},
		{"wildcard other domain", []string{"https://*.example.com"}, "push.example.net", "https://evilexample.com", false},
		{"star allows any", []string{"*"}, "push.example.com", "https://evil.example", true},
		{"star allows null", []string{"*"}, "push.example.com", "null", true},
		{"ipv6 same origin", nil, "[::1]:8080", "http://[::1]:8080", true},
		{"ipv6 listed", []string{"http://[::1]:3000"}, "[::1]:8080", "http://[::1]:3000", true},
		// No page's origin holds more than scheme, host and port: refused,
		// not compared by its host alone (found 2026-12-07 by the attack pass).
		{"a user before a listed host", []string{"https://app.example.com"}, "push.example.com", "https://evil@app.example.com", false},
		{"a path after a listed origin", []string{"https://app.example.com"}, "push.example.com", "https://app.example.com/x", false},
		{"a trailing slash", []string{"https://app.example.com"}, "push.example.com", "https://app.example.com/", false},
		{"a query", []string{"https://app.example.com"}, "push.example.com", "https://app.example.com?x", false},
		{"a fragment", []string{"https://app.example.com"}, "push.example.com", "https://app.example.com#x", false},
		{"same host with a path", nil, "push.example.com", "https://push.example.com/", false},
		// Nor does another spelling of a listed origin pass: only the form
		// browsers serialize. The empty port passed until FuzzOriginCheck
		// found it (2026-12-07); the others guard the same rule.
		{"an empty port", []string{"https://app.example.com"}, "push.example.com", "https://app.example.com:", false},
		{"an escaped dot", []string{"https://app.example.com"}, "push.example.com", "https://app%2eexample.com", false},
		{"a bracketed name", []string{"https://app.example.com"}, "push.example.com", "https://[app.example.com]", false},
		{"a bracketed same host", nil, "push.example.com", "https://[push.example.com]", false},
		{"a port with a leading zero", []string{"http://localhost:3000"}, "push.example.com", "http://localhost:03000", false},
		{"a scheme-only origin", nil, "push.example.com", "https://", false},
		{"an underscore in a host", []string{"http://web_1:3000"}, "push.example.com", "http://web_1:3000", true},
		{"upper case from a client", []string{"https://app.example.com"}, "push.example.com", "HTTPS://App.Example.com:443", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseOrigins(tt.allowed)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/connect/ws", nil)
			r.Host = tt.host
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if got := p.check(r); got != tt.want {
				t.Errorf("check = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseOriginsRefuses(t *testing.T) {
	for _, entry := range []string{"example.com", "ftp://example.com", "https://", "https://a.com/path", "https://a.com?x=1",
		"https://a.*.com", "https://*.", "https://user@a.com", "https://*"} {
		t.Run(entry, func(t *testing.T) {
			_, err := parseOrigins([]string{entry})
			if err == nil || !strings.Contains(err.Error(), "allowed origin") {
				t.Errorf("parseOrigins(%q) = %v, want an error", entry, err)
			}
		})
	}
}

func TestTransportsShareTheOriginPolicy(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowedOrigins = []string{"https://app.example.com"} })
	r := httptest.NewRequest("GET", "/connect/ws", nil)
	r.Host = "push.example.com"
	r.Header.Set("Origin", "https://app.example.com")
	if !ts.tcfg.CheckOrigin(r) {
		t.Errorf("listed origin refused by the transports' CheckOrigin")
	}
	r.Header.Set("Origin", "https://evil.example")
	if ts.tcfg.CheckOrigin(r) {
		t.Errorf("unlisted origin allowed by the transports' CheckOrigin")
	}
	if ts.tcfg.Node != ts.node || ts.tcfg.Authenticate == nil || ts.tcfg.WriteTimeout != DefaultWriteTimeout || ts.tcfg.Logger == nil {
		t.Errorf("transports config: %+v", ts.tcfg)
	}
}

// TestRefusedOriginIsLogged checks that a refused origin is not silent on
// the server: one WARN line naming the origin and the route, rate-limited
// per origin and route, and nothing for an allowed origin.
func TestRefusedOriginIsLogged(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowedOrigins = []string{"https://app.example.com"} })
	evil := []string{"Origin", "https://evil.example"}
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(ts.logs.String(), "\n") {
			if strings.Contains(l, "origin not allowed") {
				out = append(out, l)
			}
		}
		return out
	}
	_, o := dialWSToken(t, ts.URL, "", "Origin", "https://app.example.com")
	if !o.ok {
		t.Fatalf("allowed origin: %v", o)
	}
	if l := lines(); len(l) != 0 {
		t.Fatalf("an allowed origin was logged: %q", l)
	}
	for range 3 {
		if _, o := dialWSToken(t, ts.URL, "", evil...); o.code != http.StatusForbidden {
			t.Fatalf("refused origin: %v, want 403", o)
		}
	}
	l := lines()
	if len(l) != 1 {
		t.Fatalf("three refusals on one route logged %d lines, want 1: %q", len(l), l)
	}
	for _, want := range []string{"level=WARN", `origin=https://evil.example`, "route=/connect/ws"} {
		if !strings.Contains(l[0], want) {
			t.Errorf("log line %q lacks %q", l[0], want)
		}
	}
	if o, _ := sseOpen(t, ts.URL, url.Values{"channel": {"news"}}, evil...); o.code != http.StatusForbidden {
		t.Fatalf("refused origin on SSE: %v", o)
	}
	if a := do(t, http.MethodPost, ts.URL+"/connect/sockjs/000/abc/xhr", "", evil...); a.status != http.StatusForbidden {
		t.Fatalf("refused origin on SockJS: %d %s", a.status, a.body)
	}
	l = lines()
	if len(l) != 3 || !strings.Contains(l[1], "route=/connect/sse") || !strings.Contains(l[2], "route=/connect/sockjs ") {
		t.Fatalf("another route's refusal: %q, want one line each for /connect/sse and /connect/sockjs", l)
	}
}

// TestRefusedOriginLogIsBounded: a page sending a new Origin on every
// request cannot fill the log.
func TestRefusedOriginLogIsBounded(t *testing.T) {
	ts := newTestServer(t, nil)
	for i := range 10 * refusedOriginBurst {
		r := httptest.NewRequest("GET", "/connect/ws", nil)
		r.Host = "push.example.com"
		r.Header.Set("Origin", "https://evil"+strconv.Itoa(i)+".example")
		if ts.checkOrigin(r) {
			t.Fatal("a foreign origin passed")
		}
	}
	if n := strings.Count(ts.logs.String(), "origin not allowed"); n < 1 || n > refusedOriginBurst+1 {
		t.Fatalf("%d distinct refused origins logged %d lines, want 1 to %d", 10*refusedOriginBurst, n, refusedOriginBurst+1)
	}
}
