package server

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session/brokertest"
	"github.com/waterspout/waterspout/transports/sse"
	"github.com/waterspout/waterspout/transports/ws"
)

// testAdminSecret is 44 bytes, as `head -c 32 /dev/urandom | base64` writes.
const testAdminSecret = "n2Qk8JcVdX0pT6w1rYf4mZs9bL7hEuGa3NiOqRyKtW8="

// adminSecretFile writes secret (with the newline an editor adds) to a file
// of the test's and returns its path.
func adminSecretFile(t testing.TB, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin-secret")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newAdminServer is a test server with the admin view on, behind a trusted
// proxy on loopback (so X-Forwarded-For names the client), changed by mutate.
func newAdminServer(t *testing.T, mutate func(*Config)) *testServer {
	t.Helper()
	file := adminSecretFile(t, testAdminSecret)
	ts := newTestServer(t, func(c *Config) {
		c.Admin.SecretFile = file
		c.TrustedProxies = []string{"127.0.0.1"}
		if mutate != nil {
			mutate(c)
		}
	})
	ts.admin.maxAge = 0 // every request sees the state of its moment; TestAdminStateShared checks the default
	return ts
}

func bearer(secret string) []string { return []string{"Authorization", "Bearer " + secret} }

// adminPaths are every path the admin view serves.
var adminPaths = []string{"/admin", "/admin/admin.js", "/admin/admin.css", "/admin/state"}

// TestAdminOffByDefault: without a secret every /admin path is unknown (404,
// with any method and with a credential), as before the view existed.
func TestAdminOffByDefault(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, p := range append(adminPaths, "/admin/", "/admin/index.html") {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
			if a := do(t, m, ts.URL+p, "", bearer(testAdminSecret)...); a.status != http.StatusNotFound {
				t.Errorf("%s %s without an admin secret: %d, want 404", m, p, a.status)
			}
		}
	}
	for _, r := range ts.echo.Routes() {
		if strings.HasPrefix(r.Path, "/admin") {
			t.Errorf("route %s %s registered without an admin secret", r.Method, r.Path)
		}
	}
}

// TestAdminPage: the page and its files are served with headers that keep
// them out of frames, caches and other origins' reach; the page has no
// inline script or style (the CSP allows none) and loads nothing from
// elsewhere; a wrong method is 405.
func TestAdminPage(t *testing.T) {
	ts := newAdminServer(t, nil)
	want := map[string]string{
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
	}
	types := map[string]string{
		"/admin":           "text/html; charset=utf-8",
		"/admin/admin.js":  "text/javascript; charset=utf-8",
		"/admin/admin.css": "text/css; charset=utf-8",
	}
	for p, ct := range types {
		a := do(t, http.MethodGet, ts.URL+p, "")
		if a.status != http.StatusOK || a.header.Get("Content-Type") != ct || len(a.body) == 0 {
			t.Fatalf("GET %s: %d %q, %d bytes", p, a.status, a.header.Get("Content-Type"), len(a.body))
		}
		wiretest.CheckHeaders(t, a.header, want)
		csp := a.header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("GET %s: CSP %q lacks %q", p, csp, d)
			}
		}
		if strings.Contains(csp, "'unsafe-") || strings.Contains(csp, "*") {
			t.Errorf("GET %s: CSP %q allows more than the page's own files", p, csp)
		}
		if a := do(t, http.MethodPost, ts.URL+p, ""); a.status != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 405", p, a.status)
		}
	}
	page := string(do(t, http.MethodGet, ts.URL+"/admin", "").body)
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("the page has an inline script: %s", tag)
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`\sstyle=|<style`),
		regexp.MustCompile(`\son[a-z]+=`), // inline handlers
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`),
	} {
		if m := bad.FindString(page); m != "" {
			t.Errorf("the page holds %q, which its CSP refuses or which loads from elsewhere", m)
		}
	}
	for _, ref := range []string{`src="/admin/admin.js"`, `href="/admin/admin.css"`} {
		if !strings.Contains(page, ref) {
			t.Errorf("the page does not load %s", ref)
		}
	}
	if a := do(t, http.MethodPost, ts.URL+"/admin/state", "", bearer(testAdminSecret)...); a.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /admin/state: %d, want 405", a.status)
	}
}

// TestAdminStateAuth: the state takes the secret as a Bearer credential and
// nothing else; refusals are 401 with WWW-Authenticate and the JSON error
// body; the secret, right or wrong, never reaches the log.
func TestAdminStateAuth(t *testing.T) {
	ts := newAdminServer(t, nil)
	state := ts.URL + "/admin/state"
	const guess = "n2Qk8JcVdX0pT6w1rYf4mZs9bL7hEuGa3NiOqRyKtW8-"
	for _, c := range []struct {
		name    string
		headers []string
	}{
		{"none", nil},
		{"wrong", bearer(guess)},
		{"a prefix", bearer(testAdminSecret[:32])},
		{"longer", bearer(testAdminSecret + "x")},
		{"basic", []string{"Authorization", "Basic " + testAdminSecret}},
		{"query", nil}, // below: ?token= is not read
		{"cookie", []string{"Cookie", "secret=" + testAdminSecret}},
	} {
		u := state
		if c.name == "query" {
			u += "?token=" + url.QueryEscape(testAdminSecret)
		}
		a := do(t, http.MethodGet, u, "", append(c.headers, from("192.0.2.1")...)...)
		if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s: %d %q, want 401 with WWW-Authenticate", c.name, a.status, a.header.Get("WWW-Authenticate"))
			continue
		}
		if e := a.apiErr(t); !strings.Contains(e.Reason, "admin secret") {
			t.Errorf("%s: reason %q", c.name, e.Reason)
		}
	}
	// Two Authorization headers, the right one first: not a list (RFC 9110).
	two := wiretest.Request(t, http.DefaultClient, http.MethodGet, state, "",
		http.Header{"Authorization": {"Bearer " + testAdminSecret, "Bearer " + guess}})
	if two.Status != http.StatusBadRequest {
		t.Errorf("two Authorization headers: %d, want 400", two.Status)
	}
	a := do(t, http.MethodGet, state, "", bearer(testAdminSecret)...)
	if a.status != http.StatusOK || a.header.Get("Cache-Control") != "no-store" ||
		!strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("right secret: %d %v %s", a.status, a.header, a.body)
	}
	var st adminState
	a.decode(t, &st)
	if st.Node.Goroutines <= 0 || st.Node.HeapInUseBytes <= 0 || st.Node.Go == "" || st.Broker.Name != "memory" || !st.Broker.Ready {
		t.Errorf("state %+v", st)
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "/admin/state") {
		t.Fatalf("the refusals were not logged at all:\n%s", logs)
	}
	for _, secret := range []string{testAdminSecret, guess, testAdminSecret[:32], url.QueryEscape(testAdminSecret)} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret is in the log:\n%s", logs)
		}
	}
}

// TestAdminFailedLoginsLimited: failed attempts from one address run out
// (429 with Retry-After, even for the right secret from there), while the
// right secret from another address still works, and right secrets are
// never limited.
func TestAdminFailedLoginsLimited(t *testing.T) {
	ts := newAdminServer(t, nil)
	state := ts.URL + "/admin/state"
	attacker, operator := from("198.51.100.7"), from("203.0.113.9")
	for i := range adminFailBurst {
		if a := do(t, http.MethodGet, state, "", append(bearer("guess-"+strings.Repeat("x", i)), attacker...)...); a.status != http.StatusUnauthorized {
			t.Fatalf("failed attempt %d: %d, want 401", i+1, a.status)
		}
	}
	for _, secret := range []string{"one more guess", testAdminSecret} {
		a := do(t, http.MethodGet, state, "", append(bearer(secret), attacker...)...)
		if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "10" {
			t.Fatalf("after %d failures: %d Retry-After %q, want 429 and 10", adminFailBurst, a.status, a.header.Get("Retry-After"))
		}
		a.apiErr(t)
	}
	for i := range 3 * adminFailBurst {
		if a := do(t, http.MethodGet, state, "", append(bearer(testAdminSecret), operator...)...); a.status != http.StatusOK {
			t.Fatalf("right secret #%d from another address: %d %s", i+1, a.status, a.body)
		}
	}
	if got := limited(t, ts, limitAdminLogins); got != 2 {
		t.Errorf("waterspout_limited_total{limit=%q} = %d, want 2", limitAdminLogins, got)
	}
}

// TestAdminOrigin: a page of a foreign origin gets 403 (counted in
// waterspout_origins_refused_total, which the state shows); the page's own
// origin passes.
func TestAdminOrigin(t *testing.T) {
	ts := newAdminServer(t, nil)
	state := ts.URL + "/admin/state"
	if a := do(t, http.MethodGet, state, "", append(bearer(testAdminSecret), "Origin", "https://evil.example")...); a.status != http.StatusForbidden ||
		a.header.Get("Cache-Control") != "no-store" || a.header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("foreign origin: %d %v, want 403 with the admin headers", a.status, a.header)
	}
	a := do(t, http.MethodGet, state, "", append(bearer(testAdminSecret), "Origin", ts.URL)...)
	if a.status != http.StatusOK {
		t.Fatalf("same origin: %d %s", a.status, a.body)
	}
	var st adminState
	a.decode(t, &st)
	refused, ok := metricValue(t, ts.URL, "waterspout_origins_refused_total")
	if !ok || refused != 1 || st.Counters.OriginsRefused != 1 {
		t.Errorf("origins refused: /metrics %v (%v), state %d; want 1", refused, ok, st.Counters.OriginsRefused)
	}
}

// TestAdminStateIsReal: a WebSocket session and an SSE stream on one
// channel, two publishes: the state shows the sessions by transport, the
// channel with its two subscribers, and the publications and deliveries
// /metrics counts.
func TestAdminStateIsReal(t *testing.T) {
	ts := newAdminServer(t, nil)
	state := func() adminState {
		t.Helper()
		var st adminState
		do(t, http.MethodGet, ts.URL+"/admin/state", "", bearer(testAdminSecret)...).decode(t, &st)
		return st
	}
	if st := state(); st.Sessions.Total != 0 || st.Channels.Count != 0 || st.Counters.Publications != 0 {
		t.Fatalf("a fresh server's state: %+v", st)
	}

	wsc := dialWS(t, ts.URL)
	wsc.Subscribe(1, "room:admin", nil)
	stream := openSSEStream(t, ts.URL, url.Values{"channel": {"room:admin"}})
	if f := stream.next(); f.Type != "hello" {
		t.Fatalf("sse first frame %+v", f)
	}
	subscriber(t, ts.Server, "quiet") // a second channel, less busy
	for i := range 2 {
		if a := postJSON(t, ts.URL+"/api/publish", `{"channel":"room:admin","data":`+string(rune('1'+i))+`}`); a.status != http.StatusOK {
			t.Fatalf("publish: %d %s", a.status, a.body)
		}
	}
	for range 2 {
		if f := wsc.NextNonPing(); f.Type != "message" {
			t.Fatalf("ws frame %+v", f)
		}
		if f, err := stream.NextOf("message", wiretest.WaitLimit); err != nil {
			t.Fatalf("sse: %v (%+v)", err, f)
		}
	}

	st := state()
	if st.Sessions.ByTransport[ws.Transport] != 1 || st.Sessions.ByTransport[sse.Transport] != 1 || st.Sessions.Total != 3 {
		t.Errorf("sessions %+v, want one ws, one sse, three in all (the test session too)", st.Sessions)
	}
	if len(st.Channels.Top) != 2 || st.Channels.Top[0] != (adminChannelLine{"room:admin", 2}) ||
		st.Channels.Top[1] != (adminChannelLine{"quiet", 1}) || st.Channels.Count != 2 || st.Channels.Subscriptions != 3 {
		t.Errorf("channels %+v, want room:admin with 2 subscribers, then quiet with 1", st.Channels)
	}
	for _, c := range []struct {
		series string
		got    int64
	}{
		{"waterspout_publications_total", st.Counters.Publications},
		{`waterspout_deliveries_total{transport="ws"}`, st.Counters.Deliveries[ws.Transport]},
		{`waterspout_deliveries_total{transport="sse"}`, st.Counters.Deliveries[sse.Transport]},
		{`waterspout_connections{transport="ws"}`, st.Sessions.ByTransport[ws.Transport]},
		{`waterspout_sessions_opened_total{transport="sse"}`, st.Counters.SessionsOpened[sse.Transport]},
	} {
		v, ok := metricValue(t, ts.URL, c.series)
		if !ok || int64(v) != c.got {
			t.Errorf("%s: /metrics %v (%v), state %d", c.series, v, ok, c.got)
		}
	}
	if st.Counters.Publications != 2 || st.Counters.Deliveries[ws.Transport] != 2 || st.Counters.Deliveries[sse.Transport] != 2 {
		t.Errorf("counters %+v, want 2 publications, 2 deliveries on each transport", st.Counters)
	}
	if p := st.Counters.APIRequests; len(p) != 1 || p[0] != (adminCount{Route: "/api/publish", Code: "200", Count: 2}) {
		t.Errorf("API requests %+v, want 2 × /api/publish 200", p)
	}

	wsc.Conn.Close()
	wiretest.Eventually(t, "the ws session closed in the state", func() bool {
		st := state()
		for _, c := range st.Counters.SessionsClosed {
			if c.Transport == ws.Transport && c.Count == 1 {
				return st.Sessions.ByTransport[ws.Transport] == 0
			}
		}
		return false
	})
}

// TestAdminSecretFile: the secret file must hold a secret long enough
// (auth.MinSecretBytes, as a token HMAC secret) that fits a header; each
// way of naming the file reaches the config.
func TestAdminSecretFile(t *testing.T) {
	for _, c := range []struct {
		name, secret, err string
	}{
		{"long enough", testAdminSecret, ""},
		{"exactly 32 bytes", testAdminSecret[:32], ""},
		{"short", testAdminSecret[:31], "under 32"},
		{"empty", "", "under 32"},
		{"a space", testAdminSecret[:20] + " " + testAdminSecret[20:], "white space"},
		{"a tab", testAdminSecret + "\t", "white space"},
		{"non-ASCII", testAdminSecret + "ä", "non-ASCII"},
		{"a no-break space at the end", testAdminSecret + "\u00a0", "non-ASCII"},
		{"invalid UTF-8", testAdminSecret + "\xff", "non-ASCII"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Admin: AdminConfig{SecretFile: adminSecretFile(t, c.secret)}}
			checkValidate(t, cfg.Validate(), c.err)
			s, err := New(cfg)
			checkValidate(t, err, c.err)
			if err == nil {
				if err := s.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		cfg := Config{Admin: AdminConfig{SecretFile: filepath.Join(t.TempDir(), "nope")}}
		checkValidate(t, cfg.Validate(), "admin secret")
	})
	file := adminSecretFile(t, testAdminSecret)
	cfgFile := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(cfgFile, []byte(`{"admin":{"secretFile":"`+file+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, load := range map[string]func() (Config, error){
		"flag": func() (Config, error) {
			return LoadConfig([]string{"--admin-secret-file", file}, func(string) string { return "" })
		},
		"env": func() (Config, error) {
			return LoadConfig(nil, func(k string) string {
				if k == "WATERSPOUT_ADMIN_SECRET_FILE" {
					return file
				}
				return ""
			})
		},
		"config file": func() (Config, error) {
			return LoadConfig([]string{"--config", cfgFile}, func(string) string { return "" })
		},
	} {
		cfg, err := load()
		if err != nil || cfg.Admin.SecretFile != file {
			t.Errorf("%s: %+v, %v", name, cfg.Admin, err)
		}
	}
}

// TestAdminStateOnRedis: on Redis the state says so, lists the nodes
// sharing it by their heartbeats (this one marked), counts channels on
// every node as /api/channels does, and gives /readyz's reason when the
// node is not ready.
func TestAdminStateOnRedis(t *testing.T) {
	rs := brokertest.StartRedisServer(t)
	onRedis := func(c *Config) { c.Broker, c.RedisURL = "redis", rs.URL() }
	a := newAdminServer(t, onRedis)
	b := newTestServer(t, onRedis)
	subscriber(t, b.Server, "room:far")
	var st adminState
	wiretest.Eventually(t, "node a to see node b and its channel", func() bool {
		st = adminState{}
		do(t, http.MethodGet, a.URL+"/admin/state", "", bearer(testAdminSecret)...).decode(t, &st)
		return len(st.Broker.Nodes) == 2 && len(st.Channels.Top) == 1
	})
	if st.Broker.Name != "redis" || !st.Broker.Ready || st.Broker.ChannelStates != nil || st.Channels.Scope != "cluster" ||
		st.Channels.Top[0] != (adminChannelLine{"room:far", 1}) || st.Sessions.Total != 0 {
		t.Errorf("state on redis: %+v", st)
	}
	self := 0
	for _, n := range st.Broker.Nodes {
		if n.Self {
			self++
		}
	}
	if self != 1 {
		t.Errorf("nodes %+v: want exactly one marked self", st.Broker.Nodes)
	}

	evicting := brokertest.StartRedisServerArgs(t, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
	c := newAdminServer(t, func(c *Config) { c.Broker, c.RedisURL = "redis", evicting.URL() })
	ready := do(t, http.MethodGet, c.URL+"/readyz", "")
	st = adminState{}
	do(t, http.MethodGet, c.URL+"/admin/state", "", bearer(testAdminSecret)...).decode(t, &st)
	if ready.status != http.StatusServiceUnavailable || st.Broker.Ready ||
		"not ready: "+st.Broker.Reason+"\n" != string(ready.body) {
		t.Errorf("/readyz %d %q; state ready %v, reason %q", ready.status, ready.body, st.Broker.Ready, st.Broker.Reason)
	}
}

// TestAdminRequestsWithoutASecretSpendNothing: only a request that presents
// a Bearer credential is a guess. Requests a foreign page can make (an
// <img>, a no-cors fetch: no Authorization, no Origin; a URL with user info:
// Basic) and requests a browser marks as sent for another site never spend
// the address's budget, so no page the operator visits can lock them out.
func TestAdminRequestsWithoutASecretSpendNothing(t *testing.T) {
	ts := newAdminServer(t, nil)
	state := ts.URL + "/admin/state"
	operator := from("198.51.100.7")
	for range 3 * adminFailBurst {
		for _, h := range [][]string{
			nil,
			{"Authorization", "Basic b3BlcmF0b3I6Z3Vlc3M="},
			{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors"},
			append(bearer("a guess"), "Sec-Fetch-Site", "cross-site"),
			append(bearer("a guess"), "Sec-Fetch-Site", "same-site"),
		} {
			a := do(t, http.MethodGet, state, "", append(h, operator...)...)
			if a.status != http.StatusUnauthorized && a.status != http.StatusForbidden {
				t.Fatalf("%v: %d %s, want 401 or 403", h, a.status, a.body)
			}
		}
	}
	if a := do(t, http.MethodGet, state, "", append(append(bearer(testAdminSecret), "Sec-Fetch-Site", "same-origin"), operator...)...); a.status != http.StatusOK {
		t.Fatalf("the operator's own page after the foreign requests: %d %s, want 200", a.status, a.body)
	}
	if got := limited(t, ts, limitAdminLogins); got != 0 {
		t.Errorf("waterspout_limited_total{limit=%q} = %d, want 0", limitAdminLogins, got)
	}
}

// TestAdminStateShared: one computed state answers every request for
// adminStateMaxAge, concurrent ones included, so that no number of pages or
// scripts makes a node read its metrics and every node's channel report
// more than once a second.
func TestAdminStateShared(t *testing.T) {
	ts := newAdminServer(t, nil)
	ts.admin.maxAge = time.Hour
	state := func() adminState {
		t.Helper()
		var st adminState
		do(t, http.MethodGet, ts.URL+"/admin/state", "", bearer(testAdminSecret)...).decode(t, &st)
		return st
	}
	first := state()
	postJSON(t, ts.URL+"/api/publish", `{"channel":"news","data":1}`)
	var wg sync.WaitGroup
	times := make([]time.Time, 8)
	for i := range times {
		wg.Go(func() { times[i] = state().Time })
	}
	wg.Wait()
	for i, tm := range times {
		if !tm.Equal(first.Time) {
			t.Fatalf("request %d: state of %v, want the shared one of %v", i, tm, first.Time)
		}
	}
	ts.admin.maxAge = 0
	if st := state(); !st.Time.After(first.Time) || st.Counters.Publications != 1 {
		t.Fatalf("after maxAge: %v with %d publications, want a new state with 1", st.Time, st.Counters.Publications)
	}
}
