package server

import (
	"strconv"
	"sync"
	"testing"
)

// TestAPIRequestsCountedOnceEach holds the cache in front of the
// waterspout_api_requests_total vector: requests counted at once from many
// goroutines, on series met for the first time and on cached ones, each
// land once in their own series.
func TestAPIRequestsCountedOnceEach(t *testing.T) {
	m := newMetrics()
	series := []apiSeries{{"/api/publish", 200}, {"/api/publish", 400}, {"/api/history", 200}, {"/api/publish", 413}}
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s := series[(g+i)%len(series)]
				m.apiRequest(s.route, s.code)
			}
		}()
	}
	wg.Wait()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := map[apiSeries]float64{}
	for _, f := range families {
		if f.GetName() != "waterspout_api_requests_total" {
			continue
		}
		for _, c := range f.GetMetric() {
			var s apiSeries
			for _, l := range c.GetLabel() {
				switch l.GetName() {
				case "route":
					s.route = l.GetValue()
				case "code":
					s.code, _ = strconv.Atoi(l.GetValue())
				}
			}
			counted[s] += c.GetCounter().GetValue()
		}
	}
	if len(counted) != len(series) {
		t.Errorf("series %v, want %v", counted, series)
	}
	for _, s := range series {
		if n := counted[s]; n != float64(goroutines*each/len(series)) {
			t.Errorf("%v counted %v times, want %d", s, n, goroutines*each/len(series))
		}
	}
}
