package transports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// ErrPumpPanicked is End's writeErr after a panic in the Sink: the message
// being written may be cut short.
var ErrPumpPanicked = errors.New("transports: writer panicked")

// Pump is a streaming connection's writer that holds no goroutine while the
// connection is idle. The session wakes it when a frame is queued (or when it
// ends) and a timer wakes it for heartbeats; it then runs on a goroutine of
// its own until nothing is left to write. An idle connection costs a timer
// and this struct, rather than a parked goroutine and its stack.
type Pump struct {
	s    *session.Session
	sink Sink
	ping time.Duration
	log  *slog.Logger

	// running is true while a goroutine owns the writing (and forever once
	// the pump has ended). tick is set by the timer.
	running atomic.Bool
	tick    atomic.Bool
	timer   *time.Timer
	stopCtx func() bool

	// Owned by the running goroutine.
	ended               bool
	lastData, lastProbe time.Time
	batch               []session.Item
}

// StartPump starts writing s's frames to sink, with heartbeats every ping.
// When ctx ends, the session fails with DisconnectShutdown (and the client
// is told so). The caller has written whatever comes first (the hello frame)
// and must not write to the connection any more except through sink.
func StartPump(ctx context.Context, s *session.Session, sink Sink, ping time.Duration, log *slog.Logger) *Pump {
	p := &Pump{s: s, sink: sink, ping: ping, log: log}
	now := time.Now()
	p.lastData, p.lastProbe = now, now
	p.timer = time.AfterFunc(ping, p.onTimer)
	p.stopCtx = context.AfterFunc(ctx, func() { s.Fail(session.DisconnectShutdown) })
	s.SetWakeup(p.kick)
	return p
}

func (p *Pump) onTimer() {
	p.tick.Store(true)
	p.kick()
}

// kick starts the writing goroutine unless one runs. It is called with the
// session's lock held (SetWakeup), so it only flips a flag and starts a
// goroutine.
func (p *Pump) kick() {
	if p.running.CompareAndSwap(false, true) {
		go p.run()
	}
}

// run writes until there is nothing left, then gives up the goroutine. A
// frame queued after the last look at the queue either finds running false
// (and its kick starts a new goroutine) or is seen by the look after
// running was cleared.
func (p *Pump) run() {
	defer p.recoverPanic()
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
			clear(batch)
			p.batch = batch[:0]
			if cap(p.batch) > 1024 {
				p.batch = nil
			}
			continue
		}
		if p.tick.Swap(false) {
			if err := p.heartbeat(); err != nil {
				p.end(session.Disconnect{}, err)
				return
			}
			continue
		}
		p.running.Store(false)
		if !(p.s.Pending() || p.tick.Load()) || !p.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// heartbeat runs the Sink's heartbeat when one is due and sets the timer for
// the next one: a ping interval after the last data or the last probe,
// whichever comes first.
func (p *Pump) heartbeat() error {
	now := time.Now()
	idle := !now.Before(p.lastData.Add(p.ping))
	probe := !now.Before(p.lastProbe.Add(p.ping))
	if idle || probe {
		if err := p.sink.Heartbeat(idle, probe); err != nil {
			return err
		}
		if idle {
			p.lastData = now
		}
		if probe {
			p.lastProbe = now
		}
	}
	p.timer.Reset(min(p.lastData.Sub(now), p.lastProbe.Sub(now)) + p.ping)
	return nil
}

// end stops the pump for good (running stays true, so nothing restarts it)
// and hands over to the Sink.
func (p *Pump) end(d session.Disconnect, writeErr error) {
	if p.ended {
		return
	}
	p.ended = true
	p.timer.Stop()
	p.stopCtx()
	p.batch = nil
	p.sink.End(d, writeErr)
}

func (p *Pump) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	p.log.Error("panic in "+p.s.Transport()+" writer", "session", p.s.ID(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	p.s.Fail(session.DisconnectInternal)
	p.end(session.DisconnectInternal, ErrPumpPanicked)
}
