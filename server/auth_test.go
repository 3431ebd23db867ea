package server

import (
	"net/http"
	"strings"
	"testing"
)

func TestAPIKeys(t *testing.T) {
	const key1, key2 = "first-key-0123456789", "second-key-0123456789"
	keyed := newTestServer(t, func(c *Config) { c.APIKeys = []string{key1, key2} })
	open := newTestServer(t, nil)
	body := `{"channel":"news","data":1}`
	tests := []struct {
		name    string
		srv     *testServer
		headers []string
		status  int
		reason  string
	}{
		{"missing key", keyed, nil, 401, "missing API key"},
		{"wrong key", keyed, []string{"Authorization", "Bearer nope"}, 401, "invalid API key"},
		{"key prefix", keyed, []string{"Authorization", "Bearer " + key1[:10]}, 401, "invalid API key"},
		{"key with suffix", keyed, []string{"Authorization", "Bearer " + key1 + "x"}, 401, "invalid API key"},
		{"wrong scheme", keyed, []string{"Authorization", "Basic " + key1}, 401, "invalid API key"},
		{"empty bearer", keyed, []string{"Authorization", "Bearer "}, 401, "invalid API key"},
		{"first key", keyed, []string{"Authorization", "Bearer " + key1}, 200, ""},
		{"second key", keyed, []string{"Authorization", "Bearer " + key2}, 200, ""},
		{"scheme is case-insensitive", keyed, []string{"Authorization", "bearer " + key1}, 200, ""},
		{"no keys on loopback", open, nil, 200, ""},
		{"no keys, a key presented", open, []string{"Authorization", "Bearer wrong"}, 401, "no API key configured"},
		{"no keys, any scheme presented", open, []string{"Authorization", "Basic d3Jvbmc="}, 401, "invalid API key"},
		{"no keys, proxied", open, []string{"X-Forwarded-For", "203.0.113.7"}, 401, "proxied"},
		{"no keys, Forwarded", open, []string{"Forwarded", "for=203.0.113.7"}, 401, "proxied"},
		{"no keys, rebinding host", open, []string{"Host", "evil.example:8080"}, 401, "evil.example"},
		{"no keys, localhost host", open, []string{"Host", "localhost"}, 200, ""},
		{"no keys, foreign origin", open, []string{"Origin", "http://evil.example"}, 403, "origin"},
		{"no keys, same origin", open, []string{"Origin", open.URL}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postJSON(t, tt.srv.URL+"/api/publish", body, tt.headers...)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.status == 200 {
				return
			}
			if e := a.apiErr(t); !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("reason %q, want %q", e.Reason, tt.reason)
			}
			if tt.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("every API route is guarded", func(t *testing.T) {
		for _, r := range []struct{ method, path, body string }{
			{http.MethodPost, "/api/publish", body},
			{http.MethodPost, "/api/broadcast", `{"channels":["a"],"data":1}`},
			{http.MethodGet, "/api/history?channel=a", ""},
		} {
			if a := do(t, r.method, keyed.URL+r.path, r.body); a.status != 401 {
				t.Errorf("%s %s without a key: %d", r.method, r.path, a.status)
			}
		}
	})
	t.Run("keys are never logged", func(t *testing.T) {
		postJSON(t, keyed.URL+"/api/publish", body, "Authorization", "Bearer "+key1)
		postJSON(t, keyed.URL+"/api/publish", body, "Authorization", "Bearer wrong-key-zzz")
		logs := keyed.logs.String()
		for _, secret := range []string{key1, "wrong-key-zzz"} {
			if strings.Contains(logs, secret) {
				t.Errorf("log holds %q:\n%s", secret, logs)
			}
		}
		if !strings.Contains(logs, "/api/publish") {
			t.Errorf("requests not logged:\n%s", logs)
		}
	})
}
