package transports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/waterspout/waterspout/session"
)

// Sink is a streaming connection's write side, driven by a Pump. Its methods
// run on the pump's goroutine, one at a time.
type Sink interface {
	// WriteBatch writes queued frames; the batch is never empty.
	WriteBatch(batch []session.Item) error
	// Heartbeat runs when the connection has been silent for a ping interval
	// (idle: the client should be sent a ping frame, since it watches for
	// silence) or when a ping interval has passed since the last probe
	// (probe: a transport that can ask the client for proof of life, such as
	// a WebSocket ping, should).
	Heartbeat(idle, probe bool) error
	// End runs once, last, and closes the connection and the session.
	// Either the session ended with d (writeErr is nil: the client should be
	// told d before the connection closes), or a write failed with writeErr
	// (the connection is unusable; End records why on the session, which may
	// already have failed for another reason), or the Sink panicked
	// (writeErr is ErrPumpPanicked, the session has failed with
	// DisconnectInternal, and a frame may have been cut short).
	End(d session.Disconnect, writeErr error)
}

// TrySink is a Sink that can also write a batch without blocking (see
// netconn.Conn.TryWrite). A pump whose sink is a TrySink writes its batches on the
// shared writers (Writers), a few goroutines that serve every such
// connection in turn, instead of starting a goroutine of its own for each,
// and its heartbeats too; anything that may block (flushing what a socket
// did not take, pokes, the end) still runs on a goroutine of the pump's own.
type TrySink interface {
	Sink
	// TryWriteBatch writes queued frames, the batch never empty, without
	// blocking. flushed is false when the socket did not take everything;
	// the pump then calls Flush, from a goroutine that may block, before
	// anything else.
	TryWriteBatch(batch []session.Item) (flushed bool, err error)
	// TryHeartbeat is Heartbeat without blocking, with TryWriteBatch's
	// flushed.
	TryHeartbeat(idle, probe bool) (flushed bool, err error)
	// Flush writes what TryWriteBatch or TryHeartbeat kept, under the write
	// deadline.
	Flush() error
	// TryWriteBatch, TryHeartbeat and Flush are called by the pump only, one
	// at a time, never at the same time as WriteBatch, Heartbeat, Poked or
	// End.
}

// Poker is a Sink with writes of its own to make on request (a WebSocket
// pong that answers the client's ping): Pump.Poke makes the pump call Poked
// on its writing goroutine, so that the connection keeps a single writer.
type Poker interface {
	Poked() error
}

// Hosted is a Sink whose connection has a goroutine of its own that waits
// while the pump is idle (a long-poll's handler, held on net/http). The pump
// hands its writing to that goroutine, which runs it by calling Pump.Drive,
// instead of starting a goroutine for it: a poll answered on net/http then
// costs one wake-up of its handler, as it did before polls had a pump,
// rather than a goroutine started (and its stack grown through the write
// path) for every answer.
type Hosted interface {
	// Host reports whether the sink's goroutine takes the writing the pump
	// has to do now; it then calls Drive soon. False: the pump starts a
	// goroutine of its own. Called with the session's lock held: it must
	// not block.
	Host() bool
}

// ErrPumpPanicked is End's writeErr after a panic in the Sink: the message
// being written may be cut short.
var ErrPumpPanicked = errors.New("transports: writer panicked")

// Pump is a streaming connection's writer that holds no goroutine while the
// connection is idle. The session wakes it when a frame is queued (or when it
// ends) and a timer wakes it for heartbeats; it then runs on a goroutine of
// its own until nothing is left to write. An idle connection costs a timer
// and this struct, rather than a parked goroutine and its stack.
type Pump struct {
	w    *Writers
	s    *session.Session
	sink Sink
	try  TrySink // sink, when it can write without blocking
	host Hosted  // sink, when it has a goroutine that can write
	ping time.Duration
	log  *slog.Logger

	// running is true while a goroutine owns the writing (and forever once
	// the pump has ended). tick is set by the timer, poked by Poke.
	running     atomic.Bool
	tick, poked atomic.Bool
	timer       *time.Timer
	stopCtx     func() bool

	// Owned by the goroutine that owns the writing.
	ended               bool
	unflushed           bool  // a TryWriteBatch kept bytes: Flush first
	writeErr            error // a TryWriteBatch failed: end with it
	lastData, lastProbe time.Time
	batch               []session.Item
}

// StartPump starts writing s's frames to sink, with heartbeats every ping
// (none when ping ≤ 0: a long-poll's pump lives for one answer). When ctx
// ends, the session fails with DisconnectShutdown (and the client is told
// so). The caller has written whatever comes first (the hello frame)
// and must not write to the connection any more except through sink.
//
// The pump's batches and heartbeats go to w's shared writers when sink is a
// TrySink, and its heartbeats fall on w's grid.
func (w *Writers) StartPump(ctx context.Context, s *session.Session, sink Sink, ping time.Duration, log *slog.Logger) *Pump {
	p := &Pump{w: w, s: s, sink: sink, ping: ping, log: log}
	p.try, _ = sink.(TrySink)
	p.host, _ = sink.(Hosted)
	now := time.Now()
	p.lastData, p.lastProbe = now, now
	// Armed only once p is complete: a heartbeat on a shared writer reads
	// p.timer before anything else (Reset orders the two).
	if ping > 0 {
		p.timer = time.AfterFunc(math.MaxInt64, p.onTimer)
	}
	p.stopCtx = noStop
	if ctx.Done() != nil { // a context that can end
		p.stopCtx = context.AfterFunc(ctx, func() { s.Fail(session.DisconnectShutdown) })
	}
	s.SetWakeup(p.kick)
	if p.timer != nil {
		p.timer.Reset(heartbeatDelay(w.origin, now, ping, ping))
	}
	return p
}

func noStop() bool { return false }

func (p *Pump) onTimer() {
	p.tick.Store(true)
	p.kick()
}

// Poke makes the pump call the sink's Poked (see Poker) soon, on its
// writing goroutine. Safe from any goroutine.
func (p *Pump) Poke() {
	p.poked.Store(true)
	p.kick()
}

// Expire is Poke from a timer's own goroutine (a long-poll's linger or
// timeout): when no goroutine owns the writing, the caller runs it, Poked
// included, instead of starting one only to hand over to it. A held poll's
// answer then costs the timer's goroutine, not that and one more.
func (p *Pump) Expire() {
	p.poked.Store(true)
	if p.running.CompareAndSwap(false, true) {
		p.run()
	}
}

// kick starts the writing unless it runs: on the shared writers for a
// TrySink, on the sink's own goroutine for a Hosted sink that takes it, on
// a goroutine of its own otherwise. It is called with the session's lock
// held (SetWakeup), so it only flips a flag and hands the pump on.
func (p *Pump) kick() {
	if p.running.CompareAndSwap(false, true) {
		switch {
		case p.try != nil:
			p.w.pool.submit(p)
		case p.host != nil && p.host.Host():
		default:
			go p.run()
		}
	}
}

// Drive does, on the caller's goroutine, the writing that a Hosted sink's
// Host took, until nothing is left. It must be called once for each Host
// that returned true, and only then.
func (p *Pump) Drive() {
	p.run()
}

// shared is the pump's turn on a shared writer: it writes what is queued
// without blocking, and hands over to a goroutine of its own (run) as soon
// as there is anything that may block: bytes the socket did not take, a
// heartbeat, a poke, a failed write, or the end of the session.
func (p *Pump) shared() {
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			go p.panicked(v, stack) // End may block: not on a shared writer
		}
	}()
	for {
		if p.poked.Load() {
			go p.run()
			return
		}
		// The session's end and its frames come before a heartbeat, as in
		// run: a connection that is closing gets no ping first, and one
		// that was just written to needs no idle ping.
		batch, err := p.s.TryNext(p.batch)
		if err != nil { // the session ended; run sees it again and ends
			go p.run()
			return
		}
		if len(batch) > 0 {
			flushed, err := p.try.TryWriteBatch(batch)
			p.lastData = time.Now()
			p.keepBatch(batch)
			if err != nil || !flushed {
				p.writeErr, p.unflushed = err, !flushed
				go p.run()
				return
			}
		}
		if p.tick.Load() && p.tick.Swap(false) { // a load first: this runs per delivery
			flushed, err := p.heartbeat(p.try.TryHeartbeat)
			if err != nil || !flushed {
				p.writeErr, p.unflushed = err, !flushed
				go p.run()
				return
			}
		}
		if !p.release() {
			return
		}
		if len(batch) > 0 {
			// More came while writing: back of the queue, so that a busy
			// connection cannot keep a shared writer from the others.
			p.w.pool.requeue(p)
			return
		}
	}
}

// release gives up the writing when nothing is left to do, and reports
// whether the caller must go on after all: a frame queued after the last
// look at the queue either finds running false (and its kick starts the
// writing again) or is seen by the look after running was cleared.
func (p *Pump) release() bool {
	p.running.Store(false)
	return (p.s.Pending() || p.tick.Load() || p.poked.Load()) && p.running.CompareAndSwap(false, true)
}

// keepBatch keeps the batch's array for the next one, unless a burst made
// it large.
func (p *Pump) keepBatch(batch []session.Item) {
	clear(batch)
	p.batch = batch[:0]
	if cap(p.batch) > 1024 {
		p.batch = nil
	}
}

// run writes, on a goroutine of the pump's own, until there is nothing
// left, then gives up the goroutine (see release).
func (p *Pump) run() {
	defer p.recoverPanic()
	if p.unflushed {
		p.unflushed = false
		if err := p.try.Flush(); err != nil {
			p.end(session.Disconnect{}, err)
			return
		}
		p.lastData = time.Now()
	}
	if p.writeErr != nil {
		p.end(session.Disconnect{}, p.writeErr)
		return
	}
	for {
		batch, err := p.s.TryNext(p.batch)
		if err != nil {
			p.end(err.(session.Disconnect), nil) // TryNext's only error
			return
		}
		if len(batch) > 0 {
			if err := p.sink.WriteBatch(batch); err != nil {
				p.end(session.Disconnect{}, err)
				return
			}
			p.lastData = time.Now()
			p.keepBatch(batch)
			continue
		}
		if p.poked.Swap(false) {
			if pk, ok := p.sink.(Poker); ok {
				if err := pk.Poked(); err != nil {
					p.end(session.Disconnect{}, err)
					return
				}
			}
			continue
		}
		if p.tick.Swap(false) {
			if _, err := p.heartbeat(p.blockingHeartbeat); err != nil {
				p.end(session.Disconnect{}, err)
				return
			}
			continue
		}
		if !p.release() {
			return
		}
	}
}

// heartbeat sends the heartbeats due now with send, and sets the timer for
// the next one. idle is due after a ping interval without data, probe a
// ping interval after the last probe. flushed is send's.
func (p *Pump) heartbeat(send func(idle, probe bool) (flushed bool, err error)) (bool, error) {
	now := time.Now()
	flushed := true
	idle, probe := !now.Before(p.lastData.Add(p.ping)), !now.Before(p.lastProbe.Add(p.ping))
	if idle || probe {
		var err error
		if flushed, err = send(idle, probe); err != nil {
			return false, err
		}
		if idle {
			p.lastData = now
		}
		if probe {
			p.lastProbe = now
		}
	}
	p.resetTimer(now)
	return flushed, nil
}

// blockingHeartbeat is the Sink's Heartbeat, for heartbeat.
func (p *Pump) blockingHeartbeat(idle, probe bool) (bool, error) {
	return true, p.sink.Heartbeat(idle, probe)
}

// resetTimer sets the timer for the next heartbeat: a ping interval after
// the last data or the last probe, whichever comes first.
func (p *Pump) resetTimer(now time.Time) {
	if p.timer == nil {
		return
	}
	p.timer.Reset(heartbeatDelay(p.w.origin, now, min(p.lastData.Sub(now), p.lastProbe.Sub(now))+p.ping, p.ping))
}

// heartbeatGridMax is the heartbeat grid's step at most. A step gathers the
// heartbeats of the connections opened within it; a larger one gathers more
// but holds up other connections' deliveries behind them: with 1 s, a round
// of pings for 10,000 connections opened in 2 s took S3's p99 from 3 to 66 ms;
// with 50 ms, S3's latency was that of no grid and a round of pings cost
// 118 ms of CPU against 106 (docs/BENCHMARKS.md).
const heartbeatGridMax = 50 * time.Millisecond

// heartbeatDelay is d from now, rounded up onto a grid of min(ping/8,
// heartbeatGridMax) that starts at origin, shared by every connection of a
// server (Writers). Heartbeats of the
// connections opened in one grid step then fall due at the same instant and
// are written in one pass of the shared writers, as a publication's
// deliveries are: one at a time, each would wake a thread and put it back to
// sleep, which measured four times Nchan's CPU for a round of pings. A
// heartbeat is late by less than one step.
func heartbeatDelay(origin, now time.Time, d, ping time.Duration) time.Duration {
	grid := min(ping/8, heartbeatGridMax)
	if grid <= 0 || d <= 0 {
		return d
	}
	at := now.Sub(origin) + d
	if r := at % grid; r != 0 {
		at += grid - r
	}
	return at - now.Sub(origin)
}

// end stops the pump for good (running stays true, so nothing restarts it)
// and hands over to the Sink.
func (p *Pump) end(d session.Disconnect, writeErr error) {
	if p.ended {
		return
	}
	p.ended = true
	if p.timer != nil {
		p.timer.Stop()
	}
	p.stopCtx()
	p.batch = nil
	p.sink.End(d, writeErr)
}

func (p *Pump) recoverPanic() {
	if v := recover(); v != nil {
		p.panicked(v, debug.Stack())
	}
}

// panicked ends the pump after a panic in the Sink.
func (p *Pump) panicked(v any, stack []byte) {
	p.log.Error("panic in "+p.s.Transport()+" writer", "session", p.s.ID(), "panic", fmt.Sprint(v), "stack", string(stack))
	p.s.Fail(session.DisconnectInternal)
	p.end(session.DisconnectInternal, ErrPumpPanicked)
}
