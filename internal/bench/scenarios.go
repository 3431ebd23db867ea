package bench

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// idle is S1: N subscribers of one channel that receive nothing, and the
// server's memory before and after they connected.
func (r *runner) idle(ctx context.Context, transport string) Result {
	n := r.sz.idleConns
	res := Result{Scenario: ScenarioIdle, Target: r.t.Kind, Transport: transport, Conns: n, Channels: 1}
	rec := newRecorder()
	channels := r.channelNames(1)
	before := r.sample()
	r.progress("idle %s: connecting %d subscribers", transport, n)
	start := time.Now()
	clients := r.connectAll(ctx, rec, r.clients(transport, rec, channels, n))
	defer stopAll(clients)
	connect := time.Since(start)
	r.progress("idle %s: %d connected in %.1fs; settling %v", transport, len(clients), connect.Seconds(), r.sz.settle)
	select {
	case <-time.After(r.sz.settle):
	case <-ctx.Done():
		return finish(res, rec)
	}
	after := r.sample()
	idle := &IdleResult{
		ConnectSeconds: connect.Seconds(),
		RSSBeforeKB:    before.RSSKB, RSSAfterKB: after.RSSKB,
		PSSBeforeKB: before.PSSKB, PSSAfterKB: after.PSSKB,
		Expected: int64(len(clients)),
	}
	if len(clients) > 0 {
		idle.KBPerConn = float64(after.PSSKB-before.PSSKB) / float64(len(clients))
		idle.RSSKBPerConn = float64(after.RSSKB-before.RSSKB) / float64(len(clients))
	}
	// Check that the connections were live: every one receives a message.
	p := newPublisher(r.t, rec, channels, 1)
	defer p.client.CloseIdleConnections()
	if err := p.warmUp(ctx, clients, r.sz.drain); err != nil {
		rec.errs.add(err)
	}
	for _, c := range clients {
		if c.warm.Load() {
			idle.Delivered++
		}
	}
	res.Idle = idle
	r.progress("idle %s: %.2f KB per connection (RSS %.2f)", transport, idle.KBPerConn, idle.RSSKBPerConn)
	return finish(res, rec)
}

// fanout is S2 (one channel, WebSocket), S5 (SSE), S6 (long-poll) and S3
// (many channels): subscribers per channel, then each rate in turn.
func (r *runner) fanout(ctx context.Context, name, transport string, nChannels, perChannel int, rates []int) Result {
	res := Result{Scenario: name, Target: r.t.Kind, Transport: transport, Conns: nChannels * perChannel, Channels: nChannels}
	rec := newRecorder()
	channels := r.channelNames(nChannels)
	r.progress("%s: connecting %d subscribers on %d channels", name, res.Conns, nChannels)
	clients := r.connectAll(ctx, rec, r.clients(transport, rec, channels, perChannel))
	defer stopAll(clients)
	p := newPublisher(r.t, rec, channels, r.sz.publishers)
	defer p.client.CloseIdleConnections()
	if err := p.warmUp(ctx, clients, r.sz.drain); err != nil {
		rec.errs.add(err)
		return finish(res, rec)
	}
	for _, rate := range rates {
		st := r.step(ctx, p, clients, rate, r.sz.step, perChannel)
		res.Steps = append(res.Steps, st)
		r.progress("%s: %d/s target: %.0f deliveries/s, %d/%d delivered, p99 %.1f ms, %.2f µs CPU/delivery",
			name, rate, st.DeliveriesPerSec, st.Delivered, st.Expected, st.P99, st.CPUMicrosPerDelivery)
		if ctx.Err() != nil {
			break
		}
	}
	return finish(res, rec)
}

// step publishes at rate deliveries per second for d to channels whose
// subscribers are measured (perChannel each) and waits for them to drain.
func (r *runner) step(ctx context.Context, p *publisher, measured []*client, rate int, d time.Duration, perChannel int) Step {
	pubRate := float64(rate) / float64(perChannel)
	count := max(int64(math.Round(pubRate*d.Seconds())), 1)
	lastBefore := make([]int64, len(p.channels))
	for i := range p.channels {
		lastBefore[i] = p.lastSeq(i)
	}
	var countBefore, gapsBefore, dupsBefore int64
	for _, c := range measured {
		countBefore += c.count.Load()
		gapsBefore += c.gaps.Load()
		dupsBefore += c.dups.Load()
	}
	hist := &histogram{}
	p.rec.hist.Store(hist)
	cpu0, self0, t0 := r.sample(), selfCPU(), time.Now()
	errs := p.schedule(ctx, count, pubRate)
	publishing := max(time.Since(t0), time.Duration(float64(count)/pubRate*float64(time.Second)))
	r.drain(ctx, p, measured)
	cpu1, self1, elapsed := r.sample(), selfCPU(), time.Since(t0)

	st := Step{TargetRate: rate, Publications: count, PublishErrors: errs, Seconds: publishing.Seconds()}
	for _, c := range measured {
		st.Expected += p.lastSeq(c.chIdx) - lastBefore[c.chIdx]
		st.Delivered += c.count.Load()
		st.Gaps += c.gaps.Load()
		st.Dups += c.dups.Load()
	}
	st.Delivered -= countBefore
	st.Gaps -= gapsBefore
	st.Dups -= dupsBefore
	st.DeliveriesPerSec = float64(st.Delivered) / publishing.Seconds()
	st.setLatency(hist)
	r.fillCPU(&st, cpu0, cpu1, self1-self0, elapsed)
	return st
}

// setLatency sets a step's latency quantiles from its histogram.
func (st *Step) setLatency(h *histogram) {
	st.P50, st.P99, st.P999, st.Max = ms(h.Quantile(0.50)), ms(h.Quantile(0.99)), ms(h.Quantile(0.999)), ms(h.Max())
}

// fillCPU sets a step's server and client CPU figures.
func (r *runner) fillCPU(st *Step, cpu0, cpu1 procSample, self, elapsed time.Duration) {
	st.ClientCPUPct = 100 * self.Seconds() / elapsed.Seconds()
	if st.Delivered > 0 {
		st.ClientMicrosPerDelivery = float64(self.Microseconds()) / float64(st.Delivered)
	}
	if !r.proc.enabled() {
		return
	}
	server := cpu1.CPU - cpu0.CPU
	st.ServerCPUSeconds = server.Seconds()
	st.ServerCPUPct = 100 * server.Seconds() / elapsed.Seconds()
	st.ServerRSSKB = cpu1.RSSKB
	if st.Delivered > 0 && server > 0 {
		st.CPUMicrosPerDelivery = float64(server.Microseconds()) / float64(st.Delivered)
		st.SysMicrosPerDelivery = float64((cpu1.Sys - cpu0.Sys).Microseconds()) / float64(st.Delivered)
		st.DeliveriesPerCPUSec = float64(st.Delivered) / server.Seconds()
	}
}

// The transports of S4's results: one publication per request, or a batch.
const (
	transportHTTP      = "http"
	transportHTTPBatch = "http-batch"
)

// publish is S4: publishers each publishing as fast as the server answers,
// over keep-alive connections, for one step; on WaterSpout a second step
// sends the same publications Config.Batch per request (POST /api/batch),
// so that one run gives both rates and their ratio. Nchan has no batch
// publish.
func (r *runner) publish(ctx context.Context) []Result {
	out := []Result{r.publishStep(ctx, 0)}
	if r.t.Kind == KindWaterSpout && r.cfg.Batch > 0 && ctx.Err() == nil {
		out = append(out, r.publishStep(ctx, r.cfg.Batch))
	}
	return out
}

// publishStep runs one step of S4: each publisher publishing to its own
// channel (batch 0), or sending batches of batch publications spread over
// every publisher's channel, as a backend cancelling many orders at once
// would.
func (r *runner) publishStep(ctx context.Context, batch int) Result {
	k := r.sz.publishers
	transport, what := transportHTTP, "publish"
	if batch > 0 {
		transport, what = transportHTTPBatch, fmt.Sprintf("publish in batches of %d", batch)
	}
	res := Result{Scenario: ScenarioPublish, Target: r.t.Kind, Transport: transport, Conns: k, Channels: k}
	rec := newRecorder()
	channels := r.channelNames(k)
	client := newPublishClient(k)
	defer client.CloseIdleConnections()
	hist := &histogram{}
	var ok, failed, requests atomic.Int64
	r.progress("%s: %d publishers for %v", what, k, r.sz.step)
	cpu0, self0, t0 := r.sample(), selfCPU(), time.Now()
	stop := t0.Add(r.sz.step)
	var wg sync.WaitGroup
	for w, ch := range channels {
		wg.Go(func() {
			var buf []byte
			for seq := int64(1); time.Now().Before(stop) && ctx.Err() == nil; seq++ {
				start := time.Now()
				n, published := 1, 0
				var err error
				if batch == 0 {
					buf = appendPayload(buf[:0], seq, rec.now())
					if err = r.t.publish(ctx, client, ch, buf); err == nil {
						published = 1
					}
				} else {
					n = batch
					buf = appendBatch(buf[:0], channels, w, batch, seq, rec.now())
					published, err = r.t.publishBatch(ctx, client, buf, batch)
				}
				requests.Add(1)
				ok.Add(int64(published))
				if err != nil {
					failed.Add(int64(n - published))
					rec.errs.add(err)
					continue
				}
				hist.Record(time.Since(start))
			}
		})
	}
	wg.Wait()
	cpu1, self, elapsed := r.sample(), selfCPU()-self0, time.Since(t0)
	pr := &PublishResult{
		Publishers: k, Batch: batch, Requests: requests.Load(), Seconds: elapsed.Seconds(), OK: ok.Load(), Errors: failed.Load(),
		PerSec: float64(ok.Load()) / elapsed.Seconds(),
		P50:    ms(hist.Quantile(0.5)), P99: ms(hist.Quantile(0.99)), Max: ms(hist.Max()),
		ClientCPUSeconds: self.Seconds(), ClientCPUPct: 100 * self.Seconds() / elapsed.Seconds(),
	}
	if r.proc.enabled() {
		server := cpu1.CPU - cpu0.CPU
		pr.ServerCPUSeconds = server.Seconds()
		pr.ServerCPUPct = 100 * server.Seconds() / elapsed.Seconds()
		if pr.OK > 0 && server > 0 {
			pr.CPUMicrosPerPub = float64(server.Microseconds()) / float64(pr.OK)
			pr.PublishesPerCPUSec = float64(pr.OK) / server.Seconds()
		}
	}
	res.Publish = pr
	r.progress("%s: %.0f publications/s, p99 %.2f ms per request, %d errors", what, pr.PerSec, pr.P99, pr.Errors)
	return finish(res, rec)
}

// appendBatch appends a POST /api/batch body of n publications to b: the
// i-th to channels[(first+i) % len(channels)], its data a payload with
// sequence number (seq-1)*n+i+1.
func appendBatch(b []byte, channels []string, first, n int, seq, t int64) []byte {
	b = append(b, `{"publications":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"channel":`...)
		b = strconv.AppendQuote(b, channels[(first+i)%len(channels)]) // bench names are plain ASCII
		b = append(b, `,"data":`...)
		b = appendPayload(b, (seq-1)*int64(n)+int64(i)+1, t)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// reconnectRate is the background publish rate of S7, publications per
// second over all channels, so that every resume has something to replay.
const reconnectRate = 200

// reconnect is S7: WebSocket subscribers (100 per channel) with publishing
// going on; all drop their connections at once and resume from their
// positions. Every resume must recover, and no subscriber may see a gap or
// a duplicate.
func (r *runner) reconnect(ctx context.Context) Result {
	n := r.sz.reconnectClients
	nChannels := max(1, n/100)
	res := Result{Scenario: ScenarioReconnect, Target: r.t.Kind, Transport: TransportWS, Conns: n, Channels: nChannels}
	rec := newRecorder()
	channels := r.channelNames(nChannels)
	r.progress("reconnect: connecting %d subscribers on %d channels", n, nChannels)
	clients := r.connectAll(ctx, rec, r.clients(TransportWS, rec, channels, (n+nChannels-1)/nChannels))
	defer func() { stopAll(clients) }()
	p := newPublisher(r.t, rec, channels, r.sz.publishers)
	defer p.client.CloseIdleConnections()
	if err := p.warmUp(ctx, clients, r.sz.drain); err != nil {
		rec.errs.add(err)
		return finish(res, rec)
	}
	// Publish in the background, one second of schedule at a time, until
	// the storm is over and one more second has passed.
	// A chunk is never cut short: the subscribers expect every publication
	// the publisher has counted.
	var stopPub atomic.Bool
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for !stopPub.Load() && ctx.Err() == nil {
			p.schedule(ctx, reconnectRate, reconnectRate)
		}
	}()
	sleep(ctx, time.Second)

	r.progress("reconnect: dropping and resuming %d connections", len(clients))
	hist := &histogram{}
	var recovered, failed atomic.Int64
	var lastLive atomic.Int64
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			c.stop()
			start := time.Now()
			if err := c.connect(ctx, true); err != nil {
				failed.Add(1)
				rec.errs.add(err)
				return
			}
			c.start(ctx)
			live := time.Now()
			hist.Record(live.Sub(start))
			recovered.Add(1)
			for {
				prev := lastLive.Load()
				if int64(live.Sub(t0)) <= prev || lastLive.CompareAndSwap(prev, int64(live.Sub(t0))) {
					break
				}
			}
		})
	}
	wg.Wait()
	r.progress("reconnect: %d resumed, %d failed; the last after %.2fs", recovered.Load(), failed.Load(), time.Duration(lastLive.Load()).Seconds())
	sleep(ctx, time.Second)
	stopPub.Store(true)
	<-pubDone
	r.drain(ctx, p, clients)

	rr := &ReconnectResult{
		AllLiveSeconds: time.Duration(lastLive.Load()).Seconds(),
		P50:            ms(hist.Quantile(0.5)), P99: ms(hist.Quantile(0.99)),
		Recovered: int(recovered.Load()), Failed: int(failed.Load()) + n - len(clients),
		Publications: p.next,
	}
	for _, c := range clients {
		rr.Expected += p.lastSeq(c.chIdx)
		rr.Delivered += c.count.Load()
		rr.Gaps += c.gaps.Load()
		rr.Dups += c.dups.Load()
	}
	res.Reconnect = rr
	return finish(res, rec)
}

// slowRcvBuf is the receive buffer of a stalled subscriber's socket, so
// that it stops taking data after a few kilobytes instead of megabytes.
const slowRcvBuf = 4096

// slow is S8: WebSocket subscribers of one channel with larger payloads,
// first all reading (the baseline), then with 1 % stalled. It reports the
// others' latency and delivery, the server's memory, and what became of
// the stalled ones.
func (r *runner) slow(ctx context.Context) Result {
	n := r.sz.slowSubs
	res := Result{Scenario: ScenarioSlow, Target: r.t.Kind, Transport: TransportWS, Conns: n, Channels: 1}
	rec := newRecorder()
	channels := r.channelNames(1)
	all := r.clients(TransportWS, rec, channels, n)
	var fast, stalled []*client
	for i, c := range all {
		if i%100 == 99 {
			c.rcvBuf, c.expectEnd = slowRcvBuf, true
		}
	}
	rssBefore := r.sample().RSSKB
	r.progress("slow: connecting %d subscribers, 1%% of them to stall", n)
	clients := r.connectAll(ctx, rec, all)
	defer func() { stopAll(clients) }()
	for _, c := range clients {
		if c.expectEnd {
			stalled = append(stalled, c)
		} else {
			fast = append(fast, c)
		}
	}
	p := newPublisher(r.t, rec, channels, 1)
	defer p.client.CloseIdleConnections()
	p.pad = r.sz.slowPad
	sr := &SlowResult{Slow: len(stalled), PayloadB: len(p.payload(nil, 1, 1)), RSSBeforeKB: rssBefore, Codes: map[int64]int{}}
	res.Slow = sr
	if err := p.warmUp(ctx, clients, r.sz.drain); err != nil {
		rec.errs.add(err)
		return finish(res, rec)
	}
	sr.Baseline = r.step(ctx, p, fast, r.sz.slowRate, r.sz.step, len(fast)+len(stalled))
	r.progress("slow: baseline p99 %.1f ms; stalling %d for %v", sr.Baseline.P99, len(stalled), r.sz.slowStep)
	for _, c := range stalled {
		c.stalled.Store(true)
	}
	// Watch the server's memory while the stalled subscribers' data piles up.
	peak := rssBefore
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for watchCtx.Err() == nil {
			peak = max(peak, r.sample().RSSKB)
			sleep(watchCtx, 250*time.Millisecond)
		}
	}()
	sr.Stalled = r.step(ctx, p, fast, r.sz.slowRate, r.sz.slowStep, len(fast)+len(stalled))
	stopWatch()
	<-watchDone
	sr.RSSPeakKB, sr.RSSAfterKB = peak, r.sample().RSSKB
	// Let the stalled ones read again: what is left of their connection
	// shows whether the server dropped them.
	for _, c := range stalled {
		c.unstall()
	}
	waitUntil(ctx, 5*time.Second, func() bool {
		for _, c := range stalled {
			if !c.ended() && c.last.Load() < p.lastSeq(0) {
				return false
			}
		}
		return true
	})
	for _, c := range stalled {
		if c.ended() {
			sr.Dropped++
			sr.Codes[c.disconnect.Load()]++
		}
	}
	r.progress("slow: others' p99 %.1f ms, %d/%d delivered; %d of %d stalled dropped; RSS peak %d MB",
		sr.Stalled.P99, sr.Stalled.Delivered, sr.Stalled.Expected, sr.Dropped, len(stalled), peak>>10)
	return finish(res, rec)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
