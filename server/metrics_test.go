package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/session"
)

func TestMetrics(t *testing.T) {
	// A tiny queue so that a second message makes the subscriber slow.
	ts := newTestServer(t, func(c *Config) { c.Limits.MaxQueueBytes = 600 })
	sub := subscriber(t, ts.Server, "m")
	readUntil(t, sub, func(f frame) bool { return f.Type == "subscribed" })
	closed := subscriber(t, ts.Server)
	closed.Close(session.DisconnectForbidden)

	postJSON(t, ts.URL+"/api/publish", `{"channel":"m","data":"first","key":"k"}`)
	postJSON(t, ts.URL+"/api/publish", `{"channel":"m","data":"first","key":"k"}`) // duplicate
	postJSON(t, ts.URL+"/api/publish", `{"channel":"m","data":"`+strings.Repeat("x", 600)+`"}`)
	postJSON(t, ts.URL+"/api/publish", `{"channel":"bad channel","data":1}`)

	a := do(t, http.MethodGet, ts.URL+"/metrics", "")
	if a.status != 200 {
		t.Fatalf("metrics: %d", a.status)
	}
	text := string(a.body)
	for _, line := range []string{
		`waterspout_connections{transport="test"} 1`,
		`waterspout_sessions_opened_total{transport="test"} 2`,
		`waterspout_sessions_closed_total{code="3503",transport="test"} 1`,
		`waterspout_publications_total 2`,
		`waterspout_duplicate_publications_total 1`,
		`waterspout_deliveries_total{transport="test"} 1`,
		`waterspout_slow_clients_total{transport="test"} 1`,
		`waterspout_api_requests_total{code="200",route="/api/publish"} 3`,
		`waterspout_api_requests_total{code="400",route="/api/publish"} 1`,
		`go_goroutines `,
		`process_`,
	} {
		if !strings.Contains(text, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	// The help is what an operator reads at /metrics: it must say what
	// docs/OPERATIONS.md says the codes mean (a client that leaves is 1000
	// or 1006, never 0, which is a poll answered).
	if !strings.Contains(text, "# HELP waterspout_sessions_closed_total Client sessions closed, by disconnect code (1000 or 1006: the client left; 0: a poll answered") {
		t.Errorf("waterspout_sessions_closed_total's help does not say what its codes mean")
	}
	for _, leak := range []string{`channel="`, `"m"`, `bad channel`} {
		if strings.Contains(text, leak) {
			t.Errorf("metrics carry a channel name (%q)", leak)
		}
	}
}

func TestMetricsRegistriesAreSeparate(t *testing.T) {
	// Two servers in one process would panic on a shared (global) registry.
	a := newTestServer(t, nil)
	b := newTestServer(t, nil)
	postJSON(t, a.URL+"/api/publish", `{"channel":"x","data":1}`)
	if got := string(do(t, http.MethodGet, b.URL+"/metrics", "").body); strings.Contains(got, "waterspout_publications_total 1") {
		t.Errorf("server b counts server a's publication")
	}
}
