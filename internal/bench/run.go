package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Run runs the configured scenarios against the target, and against each
// peer where it supports them, one after the other.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	limit, err := RaiseFileLimit()
	if err != nil {
		return nil, err
	}
	rep := &Report{Started: time.Now().UTC(), Machine: readMachine(), Smoke: cfg.Smoke}
	rep.Machine.FileLimit = limit
	targets := append([]*Target{&cfg.Target}, cfg.Peers...)
	sz := cfg.sizes()
	for _, name := range cfg.Scenarios {
		for round := 1; round <= cfg.Rounds; round++ {
			if name == ScenarioFloor {
				res := floor(ctx, &cfg, sz)
				if cfg.Rounds > 1 {
					res.Round = round
				}
				rep.Results = append(rep.Results, res)
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				continue
			}
			for _, t := range roundOrder(targets, round) {
				r := &runner{cfg: &cfg, sz: sz, t: t, proc: newProcReader(t.PID), dialer: newDialer(t, cfg.SourceAddrs), prefix: runPrefix()}
				if cfg.Rounds > 1 {
					r.progress("%s, round %d of %d", name, round, cfg.Rounds)
				}
				results, err := r.scenario(ctx, name)
				if cfg.Rounds > 1 {
					for i := range results {
						results[i].Round = round
					}
				}
				rep.Results = append(rep.Results, results...)
				if err != nil {
					return rep, fmt.Errorf("%s against %s: %w", name, t.Kind, err)
				}
			}
		}
	}
	return rep, nil
}

// roundOrder returns the targets in the order round (from 1) runs them:
// odd rounds as given, even rounds reversed, so that neither server
// always runs first on a machine that is still settling, or last on one
// that has warmed up.
func roundOrder(targets []*Target, round int) []*Target {
	if round%2 == 1 {
		return targets
	}
	out := slices.Clone(targets)
	slices.Reverse(out)
	return out
}

// runPrefix makes channel names unique to one scenario run, so runs
// against the same server do not see each other's messages.
func runPrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "bench-" + hex.EncodeToString(b)
}

// runner runs scenarios against one target.
type runner struct {
	cfg    *Config
	sz     sizes
	t      *Target
	proc   *procReader
	dialer *dialer
	prefix string
}

func (r *runner) progress(format string, args ...any) {
	progressf(r.cfg.Progress, r.t.Kind, format, args...)
}

// progressf writes one progress line: the time, who it is about, the text.
func progressf(w io.Writer, who, format string, args ...any) {
	fmt.Fprintf(w, "%s %-10s "+format+"\n", append([]any{time.Now().Format("15:04:05"), who}, args...)...)
}

// scenario runs one scenario; it returns the results it could gather and
// an error only when the run cannot go on (the context ended).
func (r *runner) scenario(ctx context.Context, name string) ([]Result, error) {
	var out []Result
	switch name {
	case ScenarioIdle:
		for _, tr := range r.cfg.Transports {
			if r.t.supports(tr) {
				out = append(out, r.idle(ctx, tr))
			}
		}
	case ScenarioFanout:
		out = append(out, r.fanout(ctx, name, TransportWS, 1, r.sz.fanoutSubs, r.sz.rates))
	case ScenarioFanoutSSE:
		out = append(out, r.fanout(ctx, name, TransportSSE, 1, r.sz.fanoutSubs, r.sz.rates))
	case ScenarioFanoutPoll:
		if r.t.supports(TransportPoll) {
			out = append(out, r.fanout(ctx, name, TransportPoll, 1, r.sz.fanoutSubs, r.sz.rates))
		}
	case ScenarioChannels:
		out = append(out, r.fanout(ctx, name, TransportWS, r.sz.channels, r.sz.perChannel, r.sz.channelRates))
	case ScenarioPublish:
		out = append(out, r.publish(ctx)...)
	case ScenarioReconnect:
		if r.t.hasPositions() {
			out = append(out, r.reconnect(ctx))
		}
	case ScenarioSlow:
		out = append(out, r.slow(ctx))
	case ScenarioNAT:
		if r.t.supports(TransportPoll) && r.t.hasPositions() {
			out = append(out, r.nat(ctx))
		}
	case ScenarioStalled:
		out = append(out, r.stalled(ctx))
	}
	return out, ctx.Err()
}

// channelNames returns n channel names unique to this run.
func (r *runner) channelNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s.%d", r.prefix, i)
	}
	return out
}

// clients makes perChannel subscribers of each channel, client i on
// channel i % len(channels).
func (r *runner) clients(transport string, rec *recorder, channels []string, perChannel int) []*client {
	out := make([]*client, 0, len(channels)*perChannel)
	for i := range len(channels) * perChannel {
		c := newClient(r.t, transport, channels[i%len(channels)], rec, r.dialer)
		c.chIdx = i % len(channels)
		out = append(out, c)
	}
	return out
}

// connectAll connects and starts every client, DialConcurrency at a time,
// and returns the ones that connected; failures go to rec.errs.
func (r *runner) connectAll(ctx context.Context, rec *recorder, clients []*client) []*client {
	sem := make(chan struct{}, r.cfg.DialConcurrency)
	ok := make([]bool, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := c.connect(ctx, false); err != nil {
				rec.errs.add(err)
				return
			}
			c.start(ctx)
			ok[i] = true
		})
	}
	wg.Wait()
	live := clients[:0:0]
	for i, c := range clients {
		if ok[i] {
			live = append(live, c)
		}
	}
	return live
}

// stopAll closes every client and waits for their readers.
func stopAll(clients []*client) {
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(c.stop)
	}
	wg.Wait()
}

// ended reports whether a client's reader has returned.
func (c *client) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// drain waits until every client still reading has received its channel's
// last publication, or until the drain timeout.
func (r *runner) drain(ctx context.Context, p *publisher, clients []*client) {
	waitUntil(ctx, r.sz.drain, func() bool {
		for _, c := range clients {
			if c.last.Load() < p.lastSeq(c.chIdx) && !c.ended() {
				return false
			}
		}
		return true
	})
}

func (r *runner) sample() procSample {
	s, err := r.proc.sample()
	if err != nil {
		r.progress("cannot read the server's resources: %v", err)
	}
	return s
}

// finish fills a result's error fields.
func finish(res Result, rec *recorder) Result {
	res.Errors, res.FirstErrors = rec.errs.snapshot()
	return res
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
