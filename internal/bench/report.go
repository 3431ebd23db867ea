package bench

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
)

// WriteTables writes the report as Markdown tables, one per kind of
// scenario, then the ratios of the target to each peer.
func WriteTables(w io.Writer, rep *Report) error {
	tw := &tableWriter{w: w}
	m := rep.Machine
	tw.printf("Machine: %d CPUs (%s), %d MiB, Linux %s, %s, load average %s at start, file limit %d.\n",
		m.CPUs, m.CPUModel, m.MemTotalKB>>10, m.Kernel, m.GoVersion, m.LoadAverage, m.FileLimit)
	if rep.Smoke {
		tw.printf("Smoke run: sizes are tiny; the numbers check correctness only.\n")
	}
	var idle, steps, pub, rec, slow, nat, stalled []Result
	for _, r := range rep.Results {
		switch {
		case r.Idle != nil:
			idle = append(idle, r)
		case r.Publish != nil:
			pub = append(pub, r)
		case r.Reconnect != nil:
			rec = append(rec, r)
		case r.Slow != nil:
			slow = append(slow, r)
		case r.NAT != nil:
			nat = append(nat, r)
		case r.Stalled != nil:
			stalled = append(stalled, r)
		case len(r.Steps) > 0:
			steps = append(steps, r)
		}
	}
	if len(idle) > 0 {
		tw.table("S1 idle connections: server memory",
			[]string{"server", "transport", "conns", "connect s", "KB/conn (PSS)", "KB/conn (RSS)", "live", "errors"},
			func(row func(...any)) {
				for _, r := range idle {
					i := r.Idle
					row(r.who(), r.Transport, r.Conns, f2(i.ConnectSeconds), f2(i.KBPerConn), f2(i.RSSKBPerConn),
						fmt.Sprintf("%d/%d", i.Delivered, i.Expected), r.Errors)
				}
			})
	}
	if len(steps) > 0 {
		tw.table("S0/S2/S3/S5/S6 fan-out: latency from the intended send time",
			[]string{"scenario", "server", "transport", "subs", "target/s", "deliveries/s", "delivered/expected", "gaps", "dups",
				"p50 ms", "p99 ms", "p99.9 ms", "max ms", "server CPU %", "client CPU %", "µs CPU/delivery", "of which kernel µs", "deliveries/CPU-s",
				"client µs/delivery"},
			func(row func(...any)) {
				for _, r := range steps {
					for _, s := range r.Steps {
						row(r.Scenario, r.who(), r.Transport, r.Conns, s.TargetRate, f0(s.DeliveriesPerSec),
							fmt.Sprintf("%d/%d", s.Delivered, s.Expected), s.Gaps, s.Dups,
							f2(s.P50), f2(s.P99), f2(s.P999), f2(s.Max), f0(s.ServerCPUPct), f0(s.ClientCPUPct),
							f2(s.CPUMicrosPerDelivery), f2(s.SysMicrosPerDelivery), f0(s.DeliveriesPerCPUSec), f2(s.ClientMicrosPerDelivery))
					}
				}
			})
	}
	if len(pub) > 0 {
		tw.table("S4 publish API: keep-alive HTTP, closed loop (latency per request)",
			[]string{"server", "mode", "publishers", "publications/s", "p50 ms", "p99 ms", "max ms", "server CPU %", "client CPU %",
				"µs CPU/publication", "publications/CPU-s", "errors"},
			func(row func(...any)) {
				for _, r := range pub {
					p := r.Publish
					row(r.who(), p.mode(), p.Publishers, f0(p.PerSec), f2(p.P50), f2(p.P99), f2(p.Max), f0(p.ServerCPUPct),
						f0(p.ClientCPUPct), f2(p.CPUMicrosPerPub), f0(p.PublishesPerCPUSec), p.Errors)
				}
			})
		writeBatchRatios(tw, pub)
	}
	if len(rec) > 0 {
		tw.table("S7 reconnect storm: every client drops and resumes at once",
			[]string{"server", "clients", "channels", "all live s", "p50 ms", "p99 ms", "recovered", "failed", "delivered/expected", "gaps", "dups"},
			func(row func(...any)) {
				for _, r := range rec {
					x := r.Reconnect
					row(r.who(), r.Conns, r.Channels, f2(x.AllLiveSeconds), f1(x.P50), f1(x.P99), x.Recovered, x.Failed,
						fmt.Sprintf("%d/%d", x.Delivered, x.Expected), x.Gaps, x.Dups)
				}
			})
	}
	if len(slow) > 0 {
		tw.table("S8 slow consumers: 1 % stop reading",
			[]string{"server", "subs", "stalled", "payload B", "phase", "deliveries/s", "delivered/expected (readers)", "p50 ms", "p99 ms", "max ms",
				"server RSS MB", "dropped (codes)"},
			func(row func(...any)) {
				for _, r := range slow {
					s := r.Slow
					row(r.who(), r.Conns, s.Slow, s.PayloadB, "all reading", f0(s.Baseline.DeliveriesPerSec),
						fmt.Sprintf("%d/%d", s.Baseline.Delivered, s.Baseline.Expected), f2(s.Baseline.P50), f2(s.Baseline.P99), f2(s.Baseline.Max),
						fmt.Sprintf("%d", s.RSSBeforeKB>>10), "")
					row(r.who(), r.Conns, s.Slow, s.PayloadB, "1 % stalled", f0(s.Stalled.DeliveriesPerSec),
						fmt.Sprintf("%d/%d", s.Stalled.Delivered, s.Stalled.Expected), f2(s.Stalled.P50), f2(s.Stalled.P99), f2(s.Stalled.Max),
						fmt.Sprintf("peak %d, after %d", s.RSSPeakKB>>10, s.RSSAfterKB>>10), fmt.Sprintf("%d %s", s.Dropped, codes(s.Codes)))
				}
			})
	}
	if len(nat) > 0 {
		tw.table("S9 long-poll behind one address: 5 publications/s, default limits",
			[]string{"server", "subs", "connect s", "publications", "delivered/expected", "gaps", "dups", "429s",
				"p50 ms", "p99 ms", "max ms", "server CPU %"},
			func(row func(...any)) {
				for _, r := range nat {
					x := r.NAT
					row(r.who(), r.Conns, f1(x.ConnectSeconds), x.Step.Publications, fmt.Sprintf("%d/%d", x.Step.Delivered, x.Step.Expected),
						x.Step.Gaps, x.Step.Dups, x.Refused, f2(x.Step.P50), f2(x.Step.P99), f2(x.Step.Max), f0(x.Step.ServerCPUPct))
				}
			})
	}
	if len(stalled) > 0 {
		tw.table("S10 stalled SSE readers: what they cost the server and the host",
			[]string{"server", "stalled", "pubs/s × B", "phase", "server RSS MB", "KB/stalled (RSS)", "Go heap MB", "KB/stalled (heap)", "host TCP mem MB", "KB/stalled (TCP)",
				"server sockets", "sessions", "dropped", "dropped after s (p50, max)", "readers delivered/expected"},
			func(row func(...any)) {
				for _, r := range stalled {
					s := r.Stalled
					per := func(kb, base int64) string { return f1(float64(kb-base) / float64(max(s.Stalled, 1))) }
					rate := fmt.Sprintf("%d × %d", s.Rate, s.PayloadB)
					row(r.who(), s.Stalled, rate, "connected, idle", s.RSSIdleKB>>10, per(s.RSSIdleKB, s.RSSBeforeKB), s.HeapIdleKB>>10, per(s.HeapIdleKB, s.HeapBeforeKB),
						s.TCPMemIdleKB>>10, per(s.TCPMemIdleKB, s.TCPMemBeforeKB), s.ServerSocketsIdle, s.SessionsIdle, "", "", "")
					row(r.who(), s.Stalled, rate, "peak while publishing", s.RSSPeakKB>>10, per(s.RSSPeakKB, s.RSSBeforeKB), s.HeapPeakKB>>10, per(s.HeapPeakKB, s.HeapBeforeKB),
						s.TCPMemPeakKB>>10, per(s.TCPMemPeakKB, s.TCPMemBeforeKB), "", "", "", "", "")
					row(r.who(), s.Stalled, rate, fmt.Sprintf("end (%.0f s)", s.Seconds), s.RSSEndKB>>10, per(s.RSSEndKB, s.RSSBeforeKB), s.HeapEndKB>>10, per(s.HeapEndKB, s.HeapBeforeKB),
						s.TCPMemEndKB>>10, per(s.TCPMemEndKB, s.TCPMemBeforeKB),
						s.ServerSocketsEnd, s.SessionsEnd, s.Dropped, fmt.Sprintf("%s, %s", f1(s.DropP50s), f1(s.DropMaxs)),
						fmt.Sprintf("%d/%d", s.Readers.Delivered, s.Readers.Expected))
					row(r.who(), s.Stalled, rate, "clients closed +2 s", s.RSSAfterKB>>10, per(s.RSSAfterKB, s.RSSBeforeKB), s.HeapAfterKB>>10, per(s.HeapAfterKB, s.HeapBeforeKB),
						s.TCPMemAfterKB>>10, per(s.TCPMemAfterKB, s.TCPMemBeforeKB), "", "", "", "", "")
				}
			})
	}
	writeRatios(tw, rep)
	if probs := rep.Problems(); len(probs) > 0 {
		tw.printf("\nProblems:\n- %s\n", strings.Join(probs, "\n- "))
	}
	return tw.err
}

// mode names how S4 sent its publications.
func (p *PublishResult) mode() string {
	if p.Batch > 0 {
		return fmt.Sprintf("batch of %d", p.Batch)
	}
	return "single"
}

// writeBatchRatios compares, for each server and round that ran both, S4's
// batch step with its single step: publications per server CPU-second (the
// quality bar of DESIGN.md: a batch ≥ 5 × the single rate) and per second.
func writeBatchRatios(tw *tableWriter, pub []Result) {
	type at struct {
		target string
		round  int
	}
	single := map[at]*PublishResult{}
	for _, r := range pub {
		if r.Publish.Batch == 0 {
			single[at{r.Target, r.Round}] = r.Publish
		}
	}
	var rows [][]any
	for _, r := range pub {
		b, s := r.Publish, single[at{r.Target, r.Round}]
		if b.Batch == 0 || s == nil {
			continue
		}
		rows = append(rows, []any{r.who(), b.mode(), f0(s.PublishesPerCPUSec), f0(b.PublishesPerCPUSec),
			ratio(b.PublishesPerCPUSec, s.PublishesPerCPUSec), f0(s.PerSec), f0(b.PerSec), ratio(b.PerSec, s.PerSec)})
	}
	if len(rows) == 0 {
		return
	}
	tw.table("S4 batch ÷ single: publications per server CPU-second and per second",
		[]string{"server", "mode", "single/CPU-s", "batch/CPU-s", "ratio", "single/s", "batch/s", "ratio"},
		func(row func(...any)) {
			for _, r := range rows {
				row(r...)
			}
		})
}

// ratio is a ÷ b, or "–" without b.
func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return f2(a / b)
}

// writeRatios writes one ratio table per peer in the report, in the order
// the peers first appear.
func writeRatios(tw *tableWriter, rep *Report) {
	var peers []string
	for _, r := range rep.Results {
		if r.Target != KindWaterSpout && r.Target != KindFloor && !slices.Contains(peers, r.Target) {
			peers = append(peers, r.Target)
		}
	}
	for _, peer := range peers {
		writePeerRatios(tw, rep, peer)
	}
}

// peerNames are the peers' names in table headings.
var peerNames = map[string]string{KindNchan: "Nchan", KindCentrifugo: "Centrifugo"}

// writePeerRatios compares the first target with one peer on the numbers
// both measured: memory per connection, deliveries per server CPU-second
// and p99 per step, publishes per second. With several rounds, each row
// gives the median of each server's values and the median of the
// per-round ratios, with their range: the spread is the run-to-run noise.
func writePeerRatios(tw *tableWriter, rep *Report, peerKind string) {
	name := cmp.Or(peerNames[peerKind], peerKind)
	type key struct {
		metric, scenario, transport string
		rate                        int
	}
	type pair struct{ ws, peer []float64 } // indexed by round
	by := map[key]*pair{}
	var keys []key
	rounds := 1
	put := func(k key, r Result, v float64) {
		p := by[k]
		if p == nil {
			p = &pair{}
			by[k] = p
			keys = append(keys, k)
		}
		rounds = max(rounds, r.Round)
		side := &p.peer
		if r.Target == KindWaterSpout {
			side = &p.ws
		}
		for len(*side) <= r.Round {
			*side = append(*side, math.NaN())
		}
		(*side)[r.Round] = v
	}
	for _, r := range rep.Results {
		if r.Target != KindWaterSpout && r.Target != peerKind {
			continue
		}
		switch {
		case r.Idle != nil:
			put(key{"KB per idle connection", r.Scenario, r.Transport, 0}, r, r.Idle.KBPerConn)
		case r.Publish != nil:
			put(key{"publishes per second", r.Scenario, r.Transport, 0}, r, r.Publish.PerSec)
		case len(r.Steps) > 0:
			for _, s := range r.Steps {
				put(key{"deliveries per server CPU-second", r.Scenario, r.Transport, s.TargetRate}, r, s.DeliveriesPerCPUSec)
				put(key{"server kernel µs per delivery", r.Scenario, r.Transport, s.TargetRate}, r, s.SysMicrosPerDelivery)
				put(key{"p99 latency ms", r.Scenario, r.Transport, s.TargetRate}, r, s.P99)
			}
		}
	}
	// Metrics in the order first met, then by scenario, transport, rate.
	metricOrder := map[string]int{}
	for _, k := range keys {
		if _, ok := metricOrder[k.metric]; !ok {
			metricOrder[k.metric] = len(metricOrder)
		}
	}
	slices.SortStableFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(metricOrder[a.metric], metricOrder[b.metric]),
			cmp.Compare(a.scenario, b.scenario), cmp.Compare(a.transport, b.transport), cmp.Compare(a.rate, b.rate))
	})
	head := []string{"metric", "scenario", "transport", "target/s", "WaterSpout", name, "ratio"}
	if rounds > 1 {
		head = []string{"metric", "scenario", "transport", "target/s", "WaterSpout (median)", name + " (median)",
			"ratio (median)", "ratio min–max", "rounds"}
	}
	var rows [][]any
	for _, k := range keys {
		p := by[k]
		var ws, peer, ratios []float64
		for round := range max(len(p.ws), len(p.peer)) {
			w, n := at(p.ws, round), at(p.peer, round)
			if !math.IsNaN(w) {
				ws = append(ws, w)
			}
			if !math.IsNaN(n) {
				peer = append(peer, n)
			}
			if !math.IsNaN(w) && !math.IsNaN(n) && n != 0 {
				ratios = append(ratios, w/n)
			}
		}
		if len(ws) == 0 || len(peer) == 0 {
			continue
		}
		rate := ""
		if k.rate > 0 {
			rate = fmt.Sprint(k.rate)
		}
		ratio := "–"
		if len(ratios) > 0 {
			ratio = f2(median(ratios))
		}
		row := []any{k.metric, k.scenario, k.transport, rate, f2(median(ws)), f2(median(peer)), ratio}
		if rounds > 1 {
			span := "–"
			if len(ratios) > 0 {
				span = f2(slices.Min(ratios)) + "–" + f2(slices.Max(ratios))
			}
			row = append(row, span, len(ratios))
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return
	}
	tw.table("WaterSpout ÷ "+name+" (memory and latency: lower is better; throughput per CPU: higher is better)", head,
		func(row func(...any)) {
			for _, r := range rows {
				row(r...)
			}
		})
}

// at returns v[i], or NaN past its end.
func at(v []float64, i int) float64 {
	if i < len(v) {
		return v[i]
	}
	return math.NaN()
}

// median returns the middle value of v (the mean of the two middle ones
// for an even count); v must not be empty. It does not change v.
func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// who names the server of a result, with its round when there are several.
func (r Result) who() string {
	if r.Round > 0 {
		return fmt.Sprintf("%s #%d", r.Target, r.Round)
	}
	return r.Target
}

func codes(m map[int64]int) string {
	if len(m) == 0 {
		return ""
	}
	ks := make([]int64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	var parts []string
	for _, k := range ks {
		name := fmt.Sprint(k)
		if k == 0 {
			name = "no frame"
		}
		parts = append(parts, fmt.Sprintf("%s×%d", name, m[k]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

// tableWriter writes Markdown tables and keeps the first write error.
type tableWriter struct {
	w   io.Writer
	err error
}

func (t *tableWriter) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

func (t *tableWriter) table(title string, head []string, rows func(row func(...any))) {
	t.printf("\n### %s\n\n| %s |\n|%s\n", title, strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	rows(func(cells ...any) {
		s := make([]string, len(cells))
		for i, c := range cells {
			s[i] = fmt.Sprint(c)
		}
		t.printf("| %s |\n", strings.Join(s, " | "))
	})
}
