package bench

import "fmt"

// Problems lists every correctness failure in the report: errors, missing
// or extra deliveries, gaps, duplicates, failed resumes. Timing never
// counts. A smoke run passes when it is empty.
func (rep *Report) Problems() []string {
	var out []string
	add := func(r Result, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s %s %s: ", r.Scenario, r.who(), r.Transport)+fmt.Sprintf(format, args...))
	}
	step := func(r Result, what string, s Step) {
		if s.Delivered != s.Expected || s.Gaps != 0 || s.Dups != 0 || s.PublishErrors != 0 {
			add(r, "%s at %d/s: delivered %d of %d, %d gaps, %d duplicates, %d failed publishes",
				what, s.TargetRate, s.Delivered, s.Expected, s.Gaps, s.Dups, s.PublishErrors)
		}
	}
	for _, r := range rep.Results {
		if r.Errors > 0 {
			add(r, "%d errors, first: %v", r.Errors, r.FirstErrors)
		}
		switch {
		case r.Idle != nil:
			if r.Idle.Delivered != r.Idle.Expected || r.Idle.Expected != int64(r.Conns) {
				add(r, "%d of %d connections live", r.Idle.Delivered, r.Conns)
			}
		case r.Publish != nil:
			if r.Publish.OK == 0 || r.Publish.Errors > 0 {
				add(r, "%d publishes, %d failed", r.Publish.OK, r.Publish.Errors)
			}
		case r.Reconnect != nil:
			x := r.Reconnect
			if x.Failed > 0 || x.Recovered != r.Conns || x.Delivered != x.Expected || x.Gaps != 0 || x.Dups != 0 {
				add(r, "%d of %d resumed (%d failed); delivered %d of %d, %d gaps, %d duplicates",
					x.Recovered, r.Conns, x.Failed, x.Delivered, x.Expected, x.Gaps, x.Dups)
			}
		case r.NAT != nil:
			step(r, "step", r.NAT.Step)
			if r.NAT.Refused > 0 {
				add(r, "%d requests answered 429", r.NAT.Refused)
			}
		case r.Slow != nil:
			step(r, "baseline", r.Slow.Baseline)
			step(r, "with stalled subscribers", r.Slow.Stalled)
		case r.Stalled != nil:
			step(r, "readers beside stalled subscribers", r.Stalled.Readers)
		case len(r.Steps) > 0:
			for _, s := range r.Steps {
				step(r, "step", s)
			}
		default:
			add(r, "no measurement")
		}
	}
	return out
}
