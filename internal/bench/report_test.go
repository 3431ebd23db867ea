package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1}, 2},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{0.7, 0.7, 1.2}, 0.7},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.in...)
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		for i := range in {
			if in[i] != tt.in[i] {
				t.Fatalf("median reordered its argument: %v, was %v", tt.in, in)
			}
		}
	}
}

// fanoutResult is one S2 result with one step.
func fanoutResult(target string, round int, perCPUSec, p99 float64) Result {
	return Result{Scenario: ScenarioFanout, Target: target, Transport: TransportWS, Conns: 5000, Round: round,
		Steps: []Step{{TargetRate: 50000, DeliveriesPerCPUSec: perCPUSec, P99: p99}}}
}

// ratioRow returns the ratio table's row for metric, its cells joined by
// commas.
func ratioRow(t *testing.T, rep *Report, metric string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := &tableWriter{w: &buf}
	writeRatios(tw, rep)
	if tw.err != nil {
		t.Fatal(tw.err)
	}
	for line := range strings.SplitSeq(buf.String(), "\n") {
		if strings.HasPrefix(line, "| "+metric+" |") {
			return strings.Join(strings.Split(strings.Trim(line, "| "), " | "), ",")
		}
	}
	t.Fatalf("no row for %q in:\n%s", metric, buf.String())
	return ""
}

func TestWriteRatios(t *testing.T) {
	const perCPU, p99 = "deliveries per server CPU-second", "p99 latency ms"
	// With rounds, each server's column is the median of its values and
	// the ratio is the median of the per-round ratios (not the ratio of the
	// medians), with the range of the per-round ratios.
	rounds := []Result{
		fanoutResult(KindWaterSpout, 1, 100, 10),
		fanoutResult(KindNchan, 1, 200, 20),
		fanoutResult(KindNchan, 2, 100, 40),
		fanoutResult(KindWaterSpout, 2, 150, 10),
		fanoutResult(KindWaterSpout, 3, 90, 30),
		fanoutResult(KindNchan, 3, 60, 10),
	}
	tests := []struct {
		name    string
		results []Result
		metric  string
		want    string
	}{
		{"one round", []Result{fanoutResult(KindWaterSpout, 0, 150000, 30), fanoutResult(KindNchan, 0, 100000, 60)},
			perCPU, "deliveries per server CPU-second,fanout,ws,50000,150000.00,100000.00,1.50"},
		// Ratios per round 0.5, 1.5, 1.5: median 1.5. The ratio of the
		// medians would be 100/100 = 1.
		{"rounds", rounds, perCPU, "deliveries per server CPU-second,fanout,ws,50000,100.00,100.00,1.50,0.50–1.50,3"},
		{"rounds, p99", rounds, p99, "p99 latency ms,fanout,ws,50000,10.00,20.00,0.50,0.25–3.00,3"},
		// A round where one server has no result counts for that server's
		// median but gives no ratio.
		{"missing round", []Result{
			fanoutResult(KindWaterSpout, 1, 100, 10),
			fanoutResult(KindNchan, 1, 50, 20),
			fanoutResult(KindWaterSpout, 2, 300, 10),
		}, perCPU, "deliveries per server CPU-second,fanout,ws,50000,200.00,50.00,2.00,2.00–2.00,1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ratioRow(t, &Report{Results: tt.results}, tt.metric); got != tt.want {
				t.Errorf("row %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRoundOrderAlternates(t *testing.T) {
	a, b := &Target{Kind: KindWaterSpout}, &Target{Kind: KindNchan}
	var got []string
	for round := 1; round <= 3; round++ {
		for _, t := range roundOrder([]*Target{a, b}, round) {
			got = append(got, t.Kind)
		}
	}
	want := strings.Join([]string{KindWaterSpout, KindNchan, KindNchan, KindWaterSpout, KindWaterSpout, KindNchan}, ",")
	if strings.Join(got, ",") != want {
		t.Errorf("order %v, want %s", got, want)
	}
}

// TestWriteBatchRatios: S4's batch step is compared with the single step
// of the same server and round, per server CPU-second and per second; a
// server without a batch step (Nchan) gets no row.
func TestWriteBatchRatios(t *testing.T) {
	pub := func(target string, round, batch int, perCPU, perSec float64) Result {
		return Result{Scenario: ScenarioPublish, Target: target, Round: round,
			Publish: &PublishResult{Batch: batch, PublishesPerCPUSec: perCPU, PerSec: perSec}}
	}
	var buf bytes.Buffer
	tw := &tableWriter{w: &buf}
	writeBatchRatios(tw, []Result{
		pub(KindWaterSpout, 1, 0, 20000, 15000), pub(KindNchan, 1, 0, 25000, 16000), pub(KindWaterSpout, 1, 100, 150000, 90000),
		pub(KindWaterSpout, 2, 100, 120000, 80000), pub(KindWaterSpout, 2, 0, 30000, 20000),
	})
	if tw.err != nil {
		t.Fatal(tw.err)
	}
	got := buf.String()
	for _, want := range []string{
		"| waterspout #1 | batch of 100 | 20000 | 150000 | 7.50 | 15000 | 90000 | 6.00 |",
		"| waterspout #2 | batch of 100 | 30000 | 120000 | 4.00 | 20000 | 80000 | 4.00 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no row %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "nchan") {
		t.Errorf("a row for Nchan, which has no batch step:\n%s", got)
	}
}

// TestWriteRatiosTwoPeers: with Nchan and Centrifugo in one report, each
// gets its own table of WaterSpout's ratios to it, and neither's numbers
// leak into the other's.
func TestWriteRatiosTwoPeers(t *testing.T) {
	rep := &Report{Results: []Result{
		fanoutResult(KindWaterSpout, 0, 150000, 30),
		fanoutResult(KindNchan, 0, 100000, 60),
		fanoutResult(KindCentrifugo, 0, 50000, 10),
	}}
	var buf bytes.Buffer
	tw := &tableWriter{w: &buf}
	writeRatios(tw, rep)
	if tw.err != nil {
		t.Fatal(tw.err)
	}
	out := buf.String()
	nchan, centrifugo, ok := strings.Cut(out, "### WaterSpout ÷ Centrifugo")
	if !ok || !strings.Contains(nchan, "### WaterSpout ÷ Nchan") {
		t.Fatalf("want a Nchan table then a Centrifugo table:\n%s", out)
	}
	for _, c := range []struct{ table, row string }{
		{nchan, "| deliveries per server CPU-second | fanout | ws | 50000 | 150000.00 | 100000.00 | 1.50 |"},
		{centrifugo, "| deliveries per server CPU-second | fanout | ws | 50000 | 150000.00 | 50000.00 | 3.00 |"},
		{centrifugo, "| metric | scenario | transport | target/s | WaterSpout | Centrifugo | ratio |"},
		{centrifugo, "| p99 latency ms | fanout | ws | 50000 | 30.00 | 10.00 | 3.00 |"},
	} {
		if !strings.Contains(c.table, c.row) {
			t.Errorf("no row %s in:\n%s", c.row, c.table)
		}
	}
}
