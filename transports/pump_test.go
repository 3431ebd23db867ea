package transports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/waterspout/waterspout/session"
)

// recordingSink is a Sink that keeps what it was asked to do.
type recordingSink struct {
	mu        sync.Mutex
	frames    []string
	idle      int
	probes    int
	inWrite   int // writers inside a method at once: must never exceed 1
	maxInside int
	failOn    string // WriteBatch fails when a frame equals this
	panicOn   string // WriteBatch panics when a frame equals this
	block     chan struct{}
	ended     chan struct{}
	endD      session.Disconnect
	endErr    error
	ends      int
}

func newRecordingSink() *recordingSink { return &recordingSink{ended: make(chan struct{})} }

func (r *recordingSink) enter() {
	r.mu.Lock()
	r.inWrite++
	r.maxInside = max(r.maxInside, r.inWrite)
	r.mu.Unlock()
}

func (r *recordingSink) leave() {
	r.mu.Lock()
	r.inWrite--
	r.mu.Unlock()
}

func (r *recordingSink) WriteBatch(batch []session.Item) error {
	r.enter()
	defer r.leave()
	if len(batch) == 0 {
		panic("empty batch")
	}
	if r.block != nil {
		<-r.block
	}
	for _, it := range batch {
		f := string(it.Frame)
		switch f {
		case r.failOn:
			return io.ErrClosedPipe
		case r.panicOn:
			panic("sink bug")
		}
		r.mu.Lock()
		r.frames = append(r.frames, f)
		r.mu.Unlock()
	}
	return nil
}

func (r *recordingSink) Heartbeat(idle, probe bool) error {
	r.enter()
	defer r.leave()
	r.mu.Lock()
	defer r.mu.Unlock()
	if idle {
		r.idle++
	}
	if probe {
		r.probes++
	}
	return nil
}

func (r *recordingSink) End(d session.Disconnect, err error) {
	r.mu.Lock()
	r.ends++
	r.endD, r.endErr = d, err
	r.mu.Unlock()
	close(r.ended) // a second End panics the test
}

func (r *recordingSink) snapshot() (frames []string, idle, probes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.frames...), r.idle, r.probes
}

// startPump starts a pump with heartbeats every ping (0: none) on a new
// session, writing to a new recordingSink.
func startPump(t *testing.T, ping time.Duration) (*session.Session, *recordingSink, *Pump) {
	t.Helper()
	s := newPumpSession(t)
	sink := newRecordingSink()
	return s, sink, NewWriters(quiet).StartPump(context.Background(), s, sink, ping, quiet)
}

func newPumpSession(t *testing.T) *session.Session {
	t.Helper()
	b := session.NewMemoryBroker(session.MemoryBrokerConfig{})
	t.Cleanup(func() { _ = b.Close() })
	n, err := session.New(session.Config{Broker: b, Limits: session.Limits{MaxQueueBytes: 64 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	s, err := n.NewSession("test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Frames queued from several goroutines while the pump starts and stops
// its goroutine over and over all reach the sink exactly once, in the order
// each producer queued them, and the sink is never entered twice at once.
func TestPumpDeliversEverythingOnceInOrder(t *testing.T) {
	s, sink, _ := startPump(t, time.Hour)
	const producers, each = 4, 5000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if !s.Send(fmt.Appendf(nil, "%d-%d", p, i)) {
					t.Errorf("send %d-%d refused", p, i)
					return
				}
				if i%100 == 0 {
					time.Sleep(50 * time.Microsecond) // let the pump go idle now and then
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "every frame", func() bool { f, _, _ := sink.snapshot(); return len(f) == producers*each })
	frames, _, _ := sink.snapshot()
	next := make([]int, producers)
	for _, f := range frames {
		var p, i int
		if _, err := fmt.Sscanf(f, "%d-%d", &p, &i); err != nil {
			t.Fatal(err)
		}
		if i != next[p] {
			t.Fatalf("producer %d: got frame %d, want %d", p, i, next[p])
		}
		next[p]++
	}
	if sink.maxInside != 1 {
		t.Fatalf("sink entered by %d goroutines at once", sink.maxInside)
	}
	s.Close(session.ClosedByClient)
	<-sink.ended
}

// An idle pump holds no goroutine: that is its point.
func TestPumpIdleHoldsNoGoroutine(t *testing.T) {
	s, sink, _ := startPump(t, time.Hour)
	s.Send([]byte("one"))
	waitFor(t, "the frame", func() bool { f, _, _ := sink.snapshot(); return len(f) == 1 })
	waitFor(t, "the writer to go idle", func() bool { return !pumpGoroutineRunning() })
	s.Send([]byte("two"))
	waitFor(t, "the second frame", func() bool { f, _, _ := sink.snapshot(); return len(f) == 2 })
	s.Close(session.ClosedByClient)
	<-sink.ended
}

func pumpGoroutineRunning() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "transports.(*Pump).run")
}

// Heartbeats: an idle connection gets an idle heartbeat (and a probe) every
// ping interval; one that keeps receiving data gets only probes. The pump
// runs in a synctest bubble, on its own server's Writers (whose heartbeat
// grid starts on the bubble's clock), so the counts are exact.
func TestPumpHeartbeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ping = 40 * time.Millisecond
		s, sink, _ := startPump(t, ping)
		time.Sleep(2*ping + time.Millisecond)
		synctest.Wait()
		if _, idle, probes := sink.snapshot(); idle != 2 || probes != 2 {
			t.Fatalf("after two idle intervals: %d idle heartbeats, %d probes; want 2 and 2", idle, probes)
		}
		// Data every ping/4 for six intervals: no idle heartbeat is due, a
		// probe is, every interval.
		for i := range 24 {
			s.Send(fmt.Appendf(nil, "%d", i))
			time.Sleep(ping / 4)
		}
		synctest.Wait()
		if frames, idle, probes := sink.snapshot(); len(frames) != 24 || idle != 2 || probes != 2+6 {
			t.Fatalf("while data flowed: %d frames, %d idle heartbeats, %d probes; want 24, 2, 8", len(frames), idle, probes)
		}
		s.Close(session.ClosedByClient)
		<-sink.ended
	})
}

// The session's end reaches End once, with its reason; queued frames are
// dropped (Fail's contract) rather than written after the end.
func TestPumpEndsWithTheSession(t *testing.T) {
	s, sink, _ := startPump(t, time.Hour)
	s.Fail(session.DisconnectSlow)
	<-sink.ended
	if sink.endD != session.DisconnectSlow || sink.endErr != nil {
		t.Fatalf("End(%v, %v), want (%v, nil)", sink.endD, sink.endErr, session.DisconnectSlow)
	}
	s.Send([]byte("late")) // refused; must not restart the pump
	s.Close(session.ClosedByClient)
	time.Sleep(10 * time.Millisecond)
	if f, _, _ := sink.snapshot(); len(f) != 0 {
		t.Fatalf("frames written after the end: %q", f)
	}
}

// A session that has already ended when the pump starts still gets its End.
func TestPumpStartsOnEndedSession(t *testing.T) {
	s := newPumpSession(t)
	s.Fail(session.DisconnectStale)
	sink := newRecordingSink()
	NewWriters(quiet).StartPump(context.Background(), s, sink, time.Hour, quiet)
	<-sink.ended
	if sink.endD != session.DisconnectStale {
		t.Fatalf("End(%v), want %v", sink.endD, session.DisconnectStale)
	}
	s.Close(session.ClosedByClient)
}

// A pump started without heartbeats (ping 0, a long-poll's) still writes
// what is queued, makes its pokes, and ends with the session; it never
// calls Heartbeat.
func TestPumpWithoutHeartbeats(t *testing.T) {
	s, sink, p := startPump(t, 0)
	s.Send([]byte("one"))
	waitFor(t, "the frame", func() bool { f, _, _ := sink.snapshot(); return len(f) == 1 })
	p.Poke() // a recordingSink is no Poker: nothing to do, nothing to break
	s.Fail(session.DisconnectSlow)
	<-sink.ended
	if f, idle, probes := sink.snapshot(); len(f) != 1 || idle != 0 || probes != 0 || sink.endD != session.DisconnectSlow {
		t.Fatalf("frames %q, heartbeats %d/%d, End(%v); want one frame, none, %v", f, idle, probes, sink.endD, session.DisconnectSlow)
	}
	s.Close(session.ClosedByClient)
}

// When the server-wide context ends, the client is told shutdown.
func TestPumpShutdownContext(t *testing.T) {
	s := newPumpSession(t)
	sink := newRecordingSink()
	ctx, cancel := context.WithCancel(context.Background())
	NewWriters(quiet).StartPump(ctx, s, sink, time.Hour, quiet)
	cancel()
	<-sink.ended
	if sink.endD != session.DisconnectShutdown || sink.endErr != nil {
		t.Fatalf("End(%v, %v), want shutdown", sink.endD, sink.endErr)
	}
	s.Close(session.ClosedByClient)
}

// A failed write ends the pump with the error; a panicking sink ends it with
// ErrPumpPanicked and the session fails with DisconnectInternal. Either way
// End runs once.
func TestPumpWriteFailureAndPanic(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(*recordingSink)
		wantErr error
	}{
		{"write error", func(r *recordingSink) { r.failOn = "bad" }, io.ErrClosedPipe},
		{"panic", func(r *recordingSink) { r.panicOn = "bad" }, ErrPumpPanicked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPumpSession(t)
			sink := newRecordingSink()
			tc.set(sink)
			NewWriters(quiet).StartPump(context.Background(), s, sink, time.Hour, quiet)
			s.Send([]byte("good"))
			s.Send([]byte("bad"))
			<-sink.ended
			if !errors.Is(sink.endErr, tc.wantErr) {
				t.Fatalf("End error %v, want %v", sink.endErr, tc.wantErr)
			}
			if tc.wantErr == ErrPumpPanicked && s.Reason() != session.DisconnectInternal {
				t.Fatalf("session reason %v after a panic", s.Reason())
			}
			s.Send([]byte("after")) // must not start another writer
			s.Close(session.ClosedByClient)
			time.Sleep(10 * time.Millisecond)
			if sink.ends != 1 {
				t.Fatalf("End ran %d times", sink.ends)
			}
		})
	}
}

// A slow write does not stop frames from queueing, and they go out together
// in the next batch rather than one goroutine each.
func TestPumpBatchesBehindASlowWrite(t *testing.T) {
	s := newPumpSession(t)
	sink := newRecordingSink()
	sink.block = make(chan struct{})
	NewWriters(quiet).StartPump(context.Background(), s, sink, time.Hour, quiet)
	s.Send([]byte("first"))
	for i := range 100 {
		s.Send(fmt.Appendf(nil, "%d", i))
	}
	close(sink.block)
	waitFor(t, "every frame", func() bool { f, _, _ := sink.snapshot(); return len(f) == 101 })
	if sink.maxInside != 1 {
		t.Fatalf("sink entered by %d goroutines at once", sink.maxInside)
	}
	s.Close(session.ClosedByClient)
	<-sink.ended
}

// trySink is a recordingSink that writes batches without blocking: a batch
// whose first frame is keepOn is "kept" (as if the socket were full) until
// Flush, which waits for flushGate.
type trySink struct {
	*recordingSink
	keepOn    string
	flushGate chan struct{}
	mu        sync.Mutex
	tried     int
	flushes   int
	kept      bool // a kept batch has not been flushed yet
	misorder  bool // something was written while a batch was kept
	keepBeats bool // TryHeartbeat keeps what it writes, as a full socket would

	triedBeats, blockingBeats int
}

func (s *trySink) TryWriteBatch(batch []session.Item) (bool, error) {
	s.mu.Lock()
	s.tried++
	if s.kept {
		s.misorder = true
	}
	keep := string(batch[0].Frame) == s.keepOn
	s.kept = keep
	s.mu.Unlock()
	return !keep, s.recordingSink.WriteBatch(batch)
}

// TryHeartbeat records the heartbeat; with keepBeats, as if the socket
// had not taken it.
func (s *trySink) TryHeartbeat(idle, probe bool) (bool, error) {
	s.mu.Lock()
	s.triedBeats++
	if s.kept {
		s.misorder = true
	}
	s.kept = s.keepBeats
	s.mu.Unlock()
	s.recordingSink.mu.Lock()
	defer s.recordingSink.mu.Unlock()
	if idle {
		s.recordingSink.idle++
	}
	if probe {
		s.recordingSink.probes++
	}
	return !s.keepBeats, nil
}

// Heartbeat is the blocking heartbeat, which a TrySink's pump must not use.
func (s *trySink) Heartbeat(idle, probe bool) error {
	s.mu.Lock()
	s.blockingBeats++
	s.mu.Unlock()
	return s.recordingSink.Heartbeat(idle, probe)
}

func (s *trySink) WriteBatch(batch []session.Item) error {
	s.mu.Lock()
	if s.kept {
		s.misorder = true
	}
	s.mu.Unlock()
	return s.recordingSink.WriteBatch(batch)
}

func (s *trySink) Flush() error {
	if s.flushGate != nil {
		<-s.flushGate
	}
	s.mu.Lock()
	s.flushes++
	s.kept = false
	s.mu.Unlock()
	return nil
}

// A TrySink's batches are written on the shared writers; a batch the socket
// did not take is flushed before anything else is written, and while one
// connection's flush blocks, the others are still written.
func TestPumpTrySinkFlushesKeptBytesFirst(t *testing.T) {
	stuck := &trySink{recordingSink: newRecordingSink(), keepOn: "full", flushGate: make(chan struct{})}
	s1 := newPumpSession(t)
	NewWriters(quiet).StartPump(context.Background(), s1, stuck, time.Hour, quiet)
	s1.Send([]byte("full"))
	waitFor(t, "the kept batch", func() bool { stuck.mu.Lock(); defer stuck.mu.Unlock(); return stuck.kept })
	s1.Send([]byte("after"))

	// The stuck connection's flush holds its own goroutine only: others
	// still get every frame.
	others := make([]*trySink, 50)
	sessions := make([]*session.Session, len(others))
	for i := range others {
		others[i] = &trySink{recordingSink: newRecordingSink()}
		sessions[i] = newPumpSession(t)
		NewWriters(quiet).StartPump(context.Background(), sessions[i], others[i], time.Hour, quiet)
	}
	for round := range 20 {
		for _, s := range sessions {
			s.Send(fmt.Appendf(nil, "%d", round))
		}
	}
	for i, o := range others {
		waitFor(t, fmt.Sprintf("connection %d's frames", i), func() bool { f, _, _ := o.snapshot(); return len(f) == 20 })
		o.mu.Lock()
		tried := o.tried
		o.mu.Unlock()
		if tried == 0 {
			t.Fatalf("connection %d was never written without blocking", i)
		}
	}
	if f, _, _ := stuck.snapshot(); len(f) != 1 {
		t.Fatalf("the stuck connection wrote %v before its kept bytes were flushed", f)
	}
	close(stuck.flushGate)
	waitFor(t, "the frame after the flush", func() bool { f, _, _ := stuck.snapshot(); return len(f) == 2 })
	stuck.mu.Lock()
	defer stuck.mu.Unlock()
	if stuck.flushes != 1 || stuck.misorder {
		t.Fatalf("%d flushes, written while kept: %v", stuck.flushes, stuck.misorder)
	}
	for _, s := range append(sessions, s1) {
		s.Close(session.ClosedByClient)
	}
}

// A TrySink's heartbeats are written on the shared writers, never with the
// blocking Heartbeat, and one the socket did not take is flushed before the
// next frame is written.
func TestPumpTrySinkHeartbeats(t *testing.T) {
	const ping = 40 * time.Millisecond
	sink := &trySink{recordingSink: newRecordingSink(), keepBeats: true}
	s := newPumpSession(t)
	NewWriters(quiet).StartPump(context.Background(), s, sink, ping, quiet)
	waitFor(t, "two heartbeats", func() bool { _, idle, _ := sink.snapshot(); return idle >= 2 })
	s.Send([]byte("after"))
	waitFor(t, "the frame", func() bool { f, _, _ := sink.snapshot(); return len(f) == 1 })
	s.Close(session.ClosedByClient)
	<-sink.ended
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.blockingBeats != 0 || sink.triedBeats < 2 {
		t.Fatalf("%d blocking heartbeats, %d tried: want none and at least 2", sink.blockingBeats, sink.triedBeats)
	}
	if sink.flushes < 2 || sink.misorder {
		t.Fatalf("%d flushes for %d kept heartbeats, written while kept: %v", sink.flushes, sink.triedBeats, sink.misorder)
	}
}

// Heartbeat delays land on one grid, min(ping/8, 50 ms), so connections opened
// at different moments of a grid step fall due together, and never early or
// a whole step late.
func TestHeartbeatDelayGrid(t *testing.T) {
	origin := time.Now()
	for _, ping := range []time.Duration{40 * time.Millisecond, 25 * time.Second, time.Hour} {
		grid := min(ping/8, heartbeatGridMax)
		due := map[time.Duration]bool{}
		for i := range 100 {
			// 100 connections within one grid step, all with the same d.
			now := origin.Add(7*grid + time.Duration(i)*grid/100 + 1)
			got := heartbeatDelay(origin, now, ping, ping)
			if got < ping || got >= ping+grid {
				t.Fatalf("ping %v at +%v: delay %v, want in [%v, %v)", ping, now.Sub(origin), got, ping, ping+grid)
			}
			due[now.Add(got).Sub(origin)] = true
		}
		if len(due) != 1 {
			t.Fatalf("ping %v: 100 connections opened within one step fall due at %d instants, want 1", ping, len(due))
		}
		if d := heartbeatDelay(time.Now(), time.Now(), -time.Second, ping); d != -time.Second {
			t.Fatalf("an overdue heartbeat was moved to %v", d)
		}
	}
}

// hostedSink is a recordingSink with a goroutine of its own (a long-poll's
// handler): Host hands the pump's turns to it while accept is set.
type hostedSink struct {
	*recordingSink
	accept  atomic.Bool
	turns   chan struct{}
	driving atomic.Bool // the host goroutine is inside Drive
	outside atomic.Int32
}

func (h *hostedSink) Host() bool {
	if !h.accept.Load() {
		return false
	}
	h.turns <- struct{}{}
	return true
}

func (h *hostedSink) WriteBatch(batch []session.Item) error {
	if h.accept.Load() && !h.driving.Load() {
		h.outside.Add(1)
	}
	return h.recordingSink.WriteBatch(batch)
}

// A Hosted sink whose Host takes the writing gets its batches and its End
// on the goroutine that calls Drive, and no goroutine of the pump's own is
// started; once Host declines, the pump writes on a goroutine of its own
// again. Every frame arrives once, in order.
func TestPumpHostedSinkWritesOnItsOwnGoroutine(t *testing.T) {
	s := newPumpSession(t)
	sink := &hostedSink{recordingSink: newRecordingSink(), turns: make(chan struct{}, 1)}
	sink.accept.Store(true)
	p := NewWriters(quiet).StartPump(context.Background(), s, sink, 0, quiet)
	hostDone := make(chan struct{})
	stop := make(chan struct{})
	go func() { // the host: drives every turn it is given until stopped
		defer close(hostDone)
		for {
			select {
			case <-sink.turns:
				sink.driving.Store(true)
				p.Drive()
				sink.driving.Store(false)
			case <-stop:
				return
			}
		}
	}()
	for i := range 200 {
		s.Send(fmt.Appendf(nil, "%d", i))
		if pumpGoroutineStarted() {
			t.Fatal("the pump started a goroutine of its own while hosted")
		}
	}
	waitFor(t, "the hosted frames", func() bool { f, _, _ := sink.snapshot(); return len(f) == 200 })
	if n := sink.outside.Load(); n > 0 {
		t.Fatalf("%d batches written outside Drive while hosted", n)
	}
	sink.accept.Store(false)
	close(stop)
	<-hostDone
	for i := 200; i < 300; i++ {
		s.Send(fmt.Appendf(nil, "%d", i))
	}
	waitFor(t, "the frames after hosting", func() bool { f, _, _ := sink.snapshot(); return len(f) == 300 })
	frames, _, _ := sink.snapshot()
	for i, f := range frames {
		if f != fmt.Sprint(i) {
			t.Fatalf("frame %d is %q", i, f)
		}
	}
	s.Close(session.ClosedByClient)
	<-sink.ended
}

// pumpGoroutineStarted reports whether a goroutine that a pump started for
// itself is running.
func pumpGoroutineStarted() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "created by github.com/waterspout/waterspout/transports.(*Pump).kick")
}
