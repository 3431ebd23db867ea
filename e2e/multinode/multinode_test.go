package multinode

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// startAll starts, through base, n clients of each transport on channel.
func startAll(cl *clients, base, channel string, n int) []*stream {
	var out []*stream
	for i := 1; i <= n; i++ {
		ws, sse, poll := newStream(fmt.Sprintf("ws%d", i), channel),
			newStream(fmt.Sprintf("sse%d", i), channel), newStream(fmt.Sprintf("poll%d", i), channel)
		cl.ws(base, ws)
		cl.sse(base, sse)
		cl.poll([]string{base}, poll)
		out = append(out, ws, sse, poll)
	}
	return out
}

func waitSubscribed(t *testing.T, ctx context.Context, streams []*stream) {
	t.Helper()
	for _, st := range streams {
		if err := st.waitSubscribed(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// run is a numbered stream published to the nodes while clients receive
// it: the frame of the scale-out and fault scenarios.
type run struct {
	channel   string
	cl        *clients
	streams   []*stream
	pub       *publisher
	total     int
	published chan error
}

// subscribeAll starts n clients of each transport on channel through the
// cluster's haproxy and waits until every one is subscribed.
func subscribeAll(t *testing.T, ctx context.Context, c *cluster, channel string, n int) *run {
	t.Helper()
	r := &run{channel: channel, cl: newClients(t)}
	r.streams = startAll(r.cl, c.lb, channel, n)
	waitSubscribed(t, ctx, r.streams)
	return r
}

// publish starts publishing n = 1..total at rate per second, round-robin
// to urls, in the background.
func (r *run) publish(t *testing.T, ctx context.Context, urls []string, total int, rate float64) {
	r.pub, r.total = newPublisher(t, r.channel, urls...), total
	r.published = make(chan error, 1)
	go func() { r.published <- r.pub.run(ctx, 1, total, rate) }()
}

// finish waits for the publisher to end, then up to 30 s for every client
// to have received n = total, stops the clients and returns what the
// publisher did.
func (r *run) finish(t *testing.T, ctx context.Context) pubStats {
	t.Helper()
	if err := <-r.published; err != nil {
		t.Fatal(err)
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
	defer waitCancel()
	for _, st := range r.streams {
		if err := st.waitN(waitCtx, r.total); err != nil {
			t.Error(err)
		}
	}
	r.cl.stop()
	return r.pub.snapshot()
}

// checkExactlyOnce reports st's problems, and whether got is 1..total, each
// once and in order.
func checkExactlyOnce(t *testing.T, st *stream, got []delivery, problems []string, total int) {
	t.Helper()
	for _, p := range problems {
		t.Errorf("%s: %s", st.name, p)
	}
	if d := checkSequence(numbers(got), 1, total); d != "" {
		t.Errorf("%s: %s", st.name, d)
	}
}

// TestNodeKilledBehindHAProxy is the scale-out promise: WebSocket, SSE and
// long-poll clients behind a round-robin haproxy with no stickiness, a
// numbered stream published to every node in turn, and one node killed with
// SIGKILL mid-stream. Every client must end with every message exactly once,
// in order, resuming on another node from its own position.
func TestNodeKilledBehindHAProxy(t *testing.T) {
	const (
		channel   = "killed-node"
		total     = 3000
		killAfter = 1000
		rate      = 500 // publishes per second
	)
	c := startCluster(t, 3, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	r := subscribeAll(t, ctx, c, channel, 2)

	// Kill the node that holds the most WebSocket and SSE sessions (node2
	// on a tie), so that long-lived connections are cut, not only polls.
	victim, held := c.nodes[1], -1
	for _, i := range []int{1, 0, 2} {
		conns, err := c.nodes[i].connections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s holds %v", c.nodes[i].name, conns)
		if n := conns["ws"] + conns["sse"]; n > held {
			victim, held = c.nodes[i], n
		}
	}
	if held < 1 {
		t.Fatalf("no node holds a WebSocket or SSE session: haproxy did not spread the clients")
	}

	r.publish(t, ctx, c.urls(), total, rate)
	if err := r.pub.waitAccepted(ctx, killAfter); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	victim.kill()
	t.Logf("killed %s (SIGKILL) after n=%d; it held %d WebSocket/SSE sessions", victim.name, killAfter, held)
	ps := r.finish(t, ctx)
	logLatency(t, r.streams, ps.results)
	t.Logf("publisher: %d messages at %d/s round-robin to the nodes; failed attempts (retried on the next node with the same key): %v",
		total, rate, ps.failures)
	cut := 0
	for _, st := range r.streams {
		got, subs, losses, problems := st.snapshot()
		checkExactlyOnce(t, st, got, problems, total)
		for _, s := range subs[1:] {
			if s.recovered == nil || !*s.recovered {
				t.Errorf("%s: a resume at %v was not recovered (recovered %v)", st.name, s.pos, s.recovered)
			}
		}
		i := slices.IndexFunc(losses, func(l loss) bool { return l.at.After(killedAt) })
		if i < 0 {
			t.Logf("%s: no connection lost", st.name)
			continue
		}
		if !strings.HasPrefix(st.name, "poll") {
			cut++
		}
		first := losses[i]
		j := slices.IndexFunc(got, func(d delivery) bool { return d.at.After(first.at) })
		live := "never"
		if j >= 0 {
			live = got[j].at.Sub(killedAt).Round(time.Millisecond).String()
		}
		t.Logf("%s: lost its connection %v after the kill (%s); %d failed attempts; live again %s after the kill; %d resumes",
			st.name, first.at.Sub(killedAt).Round(time.Millisecond), first.reason, len(losses)-i-1, live, len(subs)-1)
	}
	if cut == 0 {
		t.Errorf("no WebSocket or SSE client lost its connection, though %s held %d of them", victim.name, held)
	}
	c.logHealth(t, killedAt, "the kill")
}

// logLatency logs, per client, the time from a publish being answered to
// its delivery (negative when the delivery came first; replays after a
// reconnect included), as p50, p99 and max.
// It is for the record only: the machine is shared, so it is not asserted.
func logLatency(t *testing.T, streams []*stream, results map[int]published) {
	t.Helper()
	for _, st := range streams {
		got, _, _, _ := st.snapshot()
		var lat []time.Duration
		for _, d := range got {
			if r, ok := results[d.n]; ok {
				lat = append(lat, d.at.Sub(r.at))
			}
		}
		if len(lat) == 0 {
			continue
		}
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(100 * time.Microsecond) }
		t.Logf("%s: delivery after the publish answer: p50 %v, p99 %v, max %v", st.name, q(0.5), q(0.99), q(1))
	}
}

// TestPublishReachesOtherNode: a publish on node A, and one on node B, reach
// a subscriber connected directly to node C, on every transport.
func TestPublishReachesOtherNode(t *testing.T) {
	c := startCluster(t, 3, false)
	a, b, target := c.nodes[0], c.nodes[1], c.nodes[2]
	tests := []struct {
		name  string
		start func(cl *clients, base string, st *stream)
	}{
		{"ws", func(cl *clients, base string, st *stream) { cl.ws(base, st) }},
		{"sse", func(cl *clients, base string, st *stream) { cl.sse(base, st) }},
		{"poll", func(cl *clients, base string, st *stream) { cl.poll([]string{base}, st) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			channel := "cross-node-" + tt.name
			cl := newClients(t)
			st := newStream(tt.name+" on "+target.name, channel)
			tt.start(cl, target.url(), st)
			if err := st.waitSubscribed(ctx); err != nil {
				t.Fatal(err)
			}
			onA, onB := newPublisher(t, channel, a.url()), newPublisher(t, channel, b.url())
			if err := onA.publish(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if err := onB.publish(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if err := st.waitN(ctx, 2); err != nil {
				t.Fatal(err)
			}
			cl.stop()

			got, _, losses, problems := st.snapshot()
			if checkExactlyOnce(t, st, got, problems, 2); len(got) != 2 {
				t.FailNow()
			}
			ra, rb := onA.snapshot().results, onB.snapshot().results
			if got[0].pos != ra[1].pos || got[1].pos != rb[2].pos {
				t.Errorf("received at %v, %v; published at %v (on %s), %v (on %s)",
					got[0].pos, got[1].pos, ra[1].pos, a.name, rb[2].pos, b.name)
			}
			if len(losses) > 0 {
				t.Errorf("%s: connection lost: %v", st.name, losses)
			}
		})
	}
}

// TestLongPollAlternatingNodes: long-poll clients that send every request to
// the next node, while a stream is published to every node in turn, never
// lose or repeat a message: the cursor alone carries their state.
func TestLongPollAlternatingNodes(t *testing.T) {
	const (
		channel = "alternating-poll"
		total   = 600
		rate    = 300
	)
	c := startCluster(t, 3, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	urls := c.urls()
	r := &run{channel: channel, cl: newClients(t)}
	for i := range urls {
		order := append(slices.Clone(urls[i:]), urls[:i]...)
		st := newStream(fmt.Sprintf("poll from %s", c.nodes[i].name), channel)
		r.cl.poll(order, st)
		r.streams = append(r.streams, st)
	}
	waitSubscribed(t, ctx, r.streams)
	r.publish(t, ctx, urls, total, rate)
	r.finish(t, ctx)

	for _, st := range r.streams {
		got, _, losses, problems := st.snapshot()
		checkExactlyOnce(t, st, got, problems, total)
		if len(losses) > 0 {
			t.Errorf("%s: failed polls: %v", st.name, losses)
		}
		counts := st.requestCounts()
		for i, u := range urls {
			// Besides the first poll, every node must have served resumes.
			if counts[u] < 2 {
				t.Errorf("%s: %s answered %d polls, want at least 2", st.name, c.nodes[i].name, counts[u])
			}
		}
		polls := 0
		for _, n := range counts {
			polls += n
		}
		t.Logf("%s: %d messages in %d polls (per node %v)", st.name, len(got), polls, counts)
	}
}

// TestRedisRestart restarts Redis (no persistence: history is lost) while
// clients are connected through haproxy and a publisher keeps going, retrying
// each failed publish with the same idempotency key. It checks that every
// client is told explicitly (recovered:false with the new epoch) rather than
// skipping silently, that nothing is received twice, and that everything
// published after the client resubscribed arrives; and it logs how long the
// outage lasts for clients.
func TestRedisRestart(t *testing.T) {
	const (
		channel   = "redis-restart"
		total     = 1500
		rate      = 200
		stopAfter = 300
		downFor   = time.Second
	)
	c := startCluster(t, 3, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := subscribeAll(t, ctx, c, channel, 1)
	r.publish(t, ctx, c.urls(), total, rate)
	if err := r.pub.waitAccepted(ctx, stopAfter); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	c.redis.Stop()
	time.Sleep(downFor) // the outage itself, not a wait for a result
	c.redis.Restart()
	upAt := time.Now()
	ps := r.finish(t, ctx)
	results := ps.results
	oldEpoch, newEpoch := results[1].pos.epoch, results[total].pos.epoch
	if oldEpoch == newEpoch {
		t.Fatalf("the epoch did not change across the restart (%s): history survived a Redis without persistence?", oldEpoch)
	}
	firstNew := total
	for n := total; n >= 1 && results[n].pos.epoch == newEpoch; n-- {
		firstNew = n
	}
	// Offsets of the new epoch are dense from 1: no retry was applied twice.
	for n := firstNew; n <= total; n++ {
		if want := uint64(n - firstNew + 1); results[n].pos.offset != want {
			t.Fatalf("publish n=%d got offset %d in the new epoch, want %d", n, results[n].pos.offset, want)
		}
	}
	if len(ps.failedAt) == 0 {
		t.Fatal("no publish failed while Redis was down")
	}
	t.Logf("Redis down %v (stop → answering PING again); publisher: %d failed attempts %v (the slowest took %v), "+
		"the last ended %v after Redis was back; first publish accepted %v after Redis was back (n=%d)",
		upAt.Sub(stoppedAt).Round(time.Millisecond), len(ps.failedAt), ps.failures, ps.slowestFailure.Round(time.Millisecond),
		ps.failedAt[len(ps.failedAt)-1].Sub(upAt).Round(time.Millisecond),
		results[firstNew].at.Sub(upAt).Round(time.Millisecond), firstNew)

	for _, st := range r.streams {
		got, subs, losses, problems := st.snapshot()
		// No (epoch, offset) twice, and no message that does not follow the
		// position: any skip was announced by a subscribed frame.
		for _, p := range problems {
			t.Errorf("%s: %s", st.name, p)
		}
		k := slices.IndexFunc(subs, func(s subscribed) bool {
			return s.recovered != nil && !*s.recovered && s.pos.epoch == newEpoch
		})
		if k < 0 {
			t.Errorf("%s: never told recovered:false with the new epoch %s (subscribed frames: %v)", st.name, newEpoch, subs)
			continue
		}
		told := subs[k]
		// Everything published after the client's resubscribe arrives, in
		// order.
		var want, have []int
		for n := firstNew; n <= total; n++ {
			if results[n].pos.offset > told.pos.offset {
				want = append(want, n)
			}
		}
		var lastOld position
		for _, d := range got {
			switch d.pos.epoch {
			case newEpoch:
				have = append(have, d.n)
			case oldEpoch:
				lastOld = d.pos
			default:
				t.Errorf("%s: n=%d in an unknown epoch %v", st.name, d.n, d.pos)
			}
		}
		if !slices.Equal(have, want) {
			t.Errorf("%s: after recovered:false at %v received n=%v, want n=%v", st.name, told.pos, have, want)
		}
		// The same n twice is allowed only for a publish whose first attempt
		// failed around the restart: it may have been applied in the old
		// epoch, lost with it, and applied again in the new one (two
		// publications, both delivered once).
		count := map[int]int{}
		for _, d := range got {
			count[d.n]++
			if count[d.n] == 2 {
				if results[d.n].failed == 0 || results[d.n].pos.epoch != newEpoch {
					t.Errorf("%s: n=%d received twice", st.name, d.n)
				} else {
					t.Logf("%s: n=%d received in both epochs: its publish was retried across the restart", st.name, d.n)
				}
			}
		}
		missedOld := 0
		for n := 1; n < firstNew; n++ {
			if results[n].pos.epoch == oldEpoch && results[n].pos.offset > lastOld.offset {
				missedOld++
			}
		}
		i := slices.IndexFunc(losses, func(l loss) bool { return l.at.After(stoppedAt) })
		if i < 0 {
			t.Errorf("%s: no connection lost or poll failed after the Redis stop", st.name)
			continue
		}
		j := slices.IndexFunc(got, func(d delivery) bool { return d.pos.epoch == newEpoch })
		if j < 0 {
			t.Errorf("%s: no message of the new epoch", st.name)
			continue
		}
		t.Logf("%s: cut %v after the Redis stop (%s), %d failed attempts; recovered:false (epoch %s, offset %d) %v after Redis was back, "+
			"first message %v after it; not received: %d old-epoch messages lost with Redis, %d new-epoch messages before the resubscribe",
			st.name, losses[i].at.Sub(stoppedAt).Round(time.Millisecond), losses[i].reason, len(losses)-i-1,
			told.pos.epoch, told.pos.offset, told.at.Sub(upAt).Round(time.Millisecond),
			got[j].at.Sub(upAt).Round(time.Millisecond), missedOld, told.pos.offset)
	}
	c.logHealth(t, stoppedAt, "the Redis stop")
}
