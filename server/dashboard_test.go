package server

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/session"
)

// dashboardQueries returns every PromQL expression of a Grafana dashboard:
// the panels' targets and the template variables' queries.
func dashboardQueries(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
				out = append(out, s)
				continue
			}
			out = append(out, dashboardQueries(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, dashboardQueries(x)...)
		}
	}
	return out
}

var metricRef = regexp.MustCompile(`\b(?:waterspout|go|process)_[a-z0-9_]+\b`)

// TestGrafanaDashboardMetricsExist checks that every metric the dashboard
// under deploy/ queries is served by /metrics of a server that has had
// some traffic, so a renamed metric cannot leave an empty panel behind.
func TestGrafanaDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile("../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	queried := map[string]bool{}
	for _, q := range dashboardQueries(dash) {
		for _, m := range metricRef.FindAllString(q, -1) {
			queried[m] = true
		}
	}
	if len(queried) < 10 {
		t.Fatalf("found only %d metrics in the dashboard's queries: %v", len(queried), queried)
	}

	a := metricsAfterTraffic(t)
	served := map[string]bool{}
	for _, line := range strings.Split(string(a.body), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			served[f[2]] = true
			if f[3] == "histogram" || f[3] == "summary" {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					served[f[2]+suffix] = true
				}
			}
		}
	}
	var missing []string
	for m := range queried {
		if !served[m] {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("deploy/grafana-dashboard.json queries metrics /metrics does not serve: %v", missing)
	}
}

// metricsAfterTraffic answers /metrics of a new server after traffic that
// makes every labelled series exist: a session opened and closed, a
// publish delivered to it, a duplicate, an API error.
func metricsAfterTraffic(t *testing.T) answer {
	t.Helper()
	ts := newTestServer(t, nil)
	sess := subscriber(t, ts.Server, "news")
	for range 2 {
		postJSON(t, ts.URL+"/api/publish", `{"channel":"news","data":1,"key":"k"}`)
	}
	postJSON(t, ts.URL+"/api/publish", `{"channel":"bad channel","data":1}`)
	sess.Close(session.Disconnect{})
	a := do(t, http.MethodGet, ts.URL+"/metrics", "")
	if a.status != http.StatusOK {
		t.Fatalf("/metrics: %d", a.status)
	}
	return a
}
