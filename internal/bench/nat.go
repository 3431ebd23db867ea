package bench

import (
	"context"
	"sync"
	"time"
)

// NAT scenario parameters: an office behind one address, on a channel with
// a few messages a second, against a server at its default limits.
const (
	natRate = 5 // publications per second on the channel
	// natConnectRate paces the first polls (new connections) under the
	// server's default connect rate (100/s beyond a burst of 500): people
	// behind one NAT open the page over minutes, not in one instant, and
	// a connect storm is the connect limit's business, not this scenario's.
	natConnectRate = 90
)

// NATResult is S9: long-poll subscribers sharing one source address.
type NATResult struct {
	ConnectSeconds float64 `json:"connectSeconds"`
	// Refused counts the 429 answers the subscribers got, connects and
	// polls together.
	Refused int64 `json:"refused429"`
	Step    Step  `json:"step"`
}

// nat is S9: N long-poll subscribers of one channel, every socket from one
// source address, each poll carrying its cursor; the channel gets natRate
// publications a second for a step. Every message must reach every
// subscriber, with no 429.
func (r *runner) nat(ctx context.Context) Result {
	n := r.sz.natClients
	res := Result{Scenario: ScenarioNAT, Target: r.t.Kind, Transport: TransportPoll, Conns: n, Channels: 1}
	rec := newRecorder()
	channels := r.channelNames(1)
	one := newDialer(r.t, 0) // no source spreading: one address
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = newClient(r.t, TransportPoll, channels[0], rec, one)
	}
	r.progress("nat: connecting %d long-poll subscribers from one address at %d/s", n, natConnectRate)
	start := time.Now()
	live := r.connectPaced(ctx, rec, clients, natConnectRate)
	defer stopAll(live)
	x := &NATResult{ConnectSeconds: time.Since(start).Seconds()}
	res.NAT = x
	p := newPublisher(r.t, rec, channels, 1)
	defer p.client.CloseIdleConnections()
	if err := p.warmUp(ctx, live, r.sz.drain); err != nil {
		rec.errs.add(err)
	}
	x.Step = r.step(ctx, p, live, natRate*n, r.sz.natStep, n)
	// Subscribers that failed to connect are still expected to receive.
	x.Step.Expected += int64(n-len(live)) * x.Step.Publications
	x.Refused = rec.refused.Load()
	r.progress("nat: %d/%d delivered, %d answered 429, p99 %.1f ms", x.Step.Delivered, x.Step.Expected, x.Refused, x.Step.P99)
	return finish(res, rec)
}

// connectPaced connects and starts clients at most rate per second, a few
// at a time, and returns those that connected; failures go to rec.errs.
func (r *runner) connectPaced(ctx context.Context, rec *recorder, clients []*client, rate int) []*client {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var mu sync.Mutex
	var live []*client
	var wg sync.WaitGroup
	for _, c := range clients {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			if err := c.connect(ctx, false); err != nil {
				rec.errs.add(err)
				return
			}
			c.start(ctx)
			mu.Lock()
			live = append(live, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	return live
}
