package poll

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// pollSink is a poll's writer: the one-shot Sink of a transports.Pump, as
// the streaming transports have theirs. The pump hands it what the session
// queues; it answers once: at once for a poll without a cursor, otherwise
// after Options.Linger from the first batch (sooner when the batch reaches
// the queue bound), at the timeout with nothing, or when the session ends
// with its disconnect. The answer closes the session; the pump then ends.
//
// A poll with a cursor and nothing to answer yet is held: up to
// Options.Timeout. Held in net/http past Options.Detach, it would keep the
// handler's goroutine (with a deep stack), the connection's background
// reader, and net/http's read, write and chunking buffers, about 30 KB. So
// on HTTP/1.x the handler hijacks the connection and returns (hold): a held
// poll is then its session, its pump and timers, this struct and one
// goroutine with a shallow stack, blocked in a read to notice a client
// that leaves. The answer stops the reader, is written on the connection,
// and hands the connection back to the HTTP server for the client's next
// poll (transports.Config.Reuse), or closes it.
type pollSink struct {
	h      *Handler
	s      *session.Session
	cur    session.Cursor
	hello  bool // the answer starts with the hello frame (no cursor)
	linger bool // wait Options.Linger after the first batch for more
	limit  int  // the queue bound: an answer this large goes at once

	pump  atomic.Pointer[transports.Pump]
	poked atomic.Bool // poke was called, perhaps before pump was set
	// done is closed once the poll is over, for a handler that waits
	// (await); nil once the handler has left it to a held poll.
	done   chan struct{}
	timeup *time.Timer // a held poll's timeout
	// host says whether the handler waits in await and runs the pump's
	// writing there (hostWaiting; hostHanded once Host has given it a turn,
	// sent on wake) or has left it to goroutines of the pump's own
	// (hostGone): a poll answered on net/http then costs one wake-up of its
	// handler, not a goroutine started for the answer and another for the
	// linger. A held poll (hostHeld) has no waiting goroutine: the first
	// turn Host gives starts one (hostAnswer), which then waits in await as
	// the handler would, so the answer costs that one goroutine, linger
	// included.
	host atomic.Int32
	wake chan struct{}

	// mu orders the pump's calls with the handler's: hold and a client that
	// leaves. It is held while answering (a write under the write deadline).
	mu       sync.Mutex
	a        answer
	items    []session.Item
	size     int
	lingerAt time.Time   // when the linger ends; zero before the first batch
	lingerT  *time.Timer // the linger's timer, off the handler's goroutine
	answered bool
	left     bool // the client went away before the answer: nobody to answer
	held     bool // the connection is hijacked (a.conn)

	// A held poll's reader. stopping is set once the answer has asked it to
	// stop. Written by the reader, read once readerDone is closed: the
	// client left; bytes it sent while held (a pipelined request), handed
	// back with the connection; more of them than maxHeldBytes.
	stopping   atomic.Bool
	readerDone chan struct{}
	gone       bool
	pending    []byte
	overflow   bool
}

var (
	_ transports.Sink   = (*pollSink)(nil)
	_ transports.Poker  = (*pollSink)(nil)
	_ transports.Hosted = (*pollSink)(nil)
)

// The handler's part in the pump's writing (pollSink.host).
const (
	hostWaiting int32 = iota
	hostHanded
	hostGone
	hostHeld
)

// maxHeldBytes bounds what a held poll keeps of bytes its client sends
// before the answer. A browser sends none; past this the connection closes
// after the answer.
const maxHeldBytes = 8 << 10

// aLongTimeAgo is a read deadline that stops a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// startSink starts the pump that answers the poll of s through a.
func (h *Handler) startSink(s *session.Session, a answer, cur session.Cursor, hello, linger bool) *pollSink {
	ps := &pollSink{h: h, s: s, a: a, cur: cur, hello: hello, linger: linger,
		limit: h.cfg.Node.Limits().MaxQueueBytes, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	// hostWaiting (the zero value): the handler goes on to await, or
	// leaves the poll to the pump in hold after unhost.
	// A poll has no server-wide context (Node.Shutdown fails its session)
	// and no heartbeats (it is answered well within a ping interval).
	p := h.cfg.Writers.StartPump(context.Background(), s, ps, 0, h.cfg.Logger)
	ps.pump.Store(p)
	if ps.poked.Load() {
		p.Poke()
	}
	return ps
}

// poke makes the pump answer now with what it has (see Poked). Safe from
// any goroutine, before the pump is stored too.
func (ps *pollSink) poke() {
	ps.poked.Store(true)
	if p := ps.pump.Load(); p != nil {
		p.Poke()
	}
}

// expire is poke for the poll's timers (linger, timeout): it runs on the
// timer's goroutine, so that goroutine answers (Pump.Expire) when the
// writing is idle.
func (ps *pollSink) expire() {
	ps.poked.Store(true)
	if p := ps.pump.Load(); p != nil {
		p.Expire()
	}
}

// Host takes the pump's writing onto the handler's goroutine while it
// waits in await (see transports.Hosted). Called with the session's lock
// held: it does not block (wake holds one turn, and a second is not given
// before the first has been taken).
func (ps *pollSink) Host() bool {
	if ps.host.CompareAndSwap(hostHeld, hostHanded) {
		go ps.hostAnswer()
		return true
	}
	if !ps.host.CompareAndSwap(hostWaiting, hostHanded) {
		return false
	}
	ps.wake <- struct{}{}
	return true
}

// hostAnswer is a held poll's goroutine for its answer, started by the
// first turn Host gives: it runs that turn and then, unless that answered,
// waits in await as a handler does, timing the linger on a channel timer
// and running the turns Host gives it, until the answer. The poll's done
// and wake, dropped while it was held idle, are made again here.
func (ps *pollSink) hostAnswer() {
	ps.mu.Lock()
	answered := ps.answered
	if !answered {
		ps.done = make(chan struct{})
	}
	ps.mu.Unlock()
	if answered { // cannot happen: an answered poll's pump has ended
		ps.drive()
		return
	}
	// The turn Host gave waits on wake, where await takes it (and times
	// the linger after it). wake reaches Host's next turn through drive's
	// CompareAndSwap.
	ps.wake = make(chan struct{}, 1)
	ps.wake <- struct{}{}
	ps.await(context.Background(), -1)
}

// drive runs the pump's turn that Host gave the handler.
func (ps *pollSink) drive() {
	ps.pump.Load().Drive()
	ps.host.CompareAndSwap(hostHanded, hostWaiting)
}

// unhost makes the handler stop running the pump's writing, running a turn
// it was given first, before it leaves await for good or hands the poll to
// hold. It reports whether the poll is still unanswered. A linger under way
// goes on on a timer of its own.
func (ps *pollSink) unhost() bool {
	for {
		switch ps.host.Load() {
		case hostWaiting:
			if !ps.host.CompareAndSwap(hostWaiting, hostGone) {
				continue // Host gave a turn just now
			}
		case hostHanded:
			<-ps.wake
			ps.drive()
			continue
		}
		break
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.answered && !ps.lingerAt.IsZero() && ps.lingerT == nil {
		ps.lingerT = time.AfterFunc(time.Until(ps.lingerAt), ps.expire)
	}
	return !ps.answered
}

// lingerLeft is how long the handler waits for a linger it must time
// itself (a batch came while it ran the pump); 0 when there is none.
func (ps *pollSink) lingerLeft() time.Duration {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.answered || ps.lingerAt.IsZero() || ps.lingerT != nil {
		return 0
	}
	return max(time.Until(ps.lingerAt), time.Nanosecond)
}

// await waits on the handler's goroutine for the answer, at most d (d < 0:
// until it comes), running the pump's writing when it is handed over
// (Host). It reports whether the poll is still unanswered; then the handler
// no longer runs the pump (unhost). When the client leaves first, the
// session ends without an answer.
func (ps *pollSink) await(ctx context.Context, d time.Duration) bool {
	ps.host.CompareAndSwap(hostGone, hostWaiting)
	var timeout, linger <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	var lingerT *time.Timer
	defer func() {
		if lingerT != nil {
			lingerT.Stop()
		}
	}()
	ctxDone := ctx.Done()
	for {
		select {
		case <-ps.done:
			return false
		case <-ps.wake:
			ps.drive()
			if left := ps.lingerLeft(); left > 0 && lingerT == nil {
				lingerT = time.NewTimer(left)
				linger = lingerT.C
			}
		case <-linger:
			linger = nil
			ps.poke() // hands a turn to this goroutine (Host)
		case <-timeout:
			return ps.unhost()
		case <-ctxDone:
			ctxDone, timeout = nil, nil
			ps.mu.Lock()
			ps.left = true
			ps.mu.Unlock()
			// The pump ends the session, here or on a goroutine of its
			// own: wait for it, the ResponseWriter must outlive it.
			ps.s.Fail(endOfPoll)
		}
	}
}

// WriteBatch collects a batch for the answer: answered at once unless the
// poll lingers for more.
func (ps *pollSink) WriteBatch(batch []session.Item) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.answered {
		return nil
	}
	ps.items = append(ps.items, batch...) // the pump reuses batch's array
	for i := range batch {
		ps.size += len(batch[i].Frame)
	}
	switch {
	case !ps.linger || ps.size >= ps.limit:
		ps.answerLocked(nil)
	case ps.lingerAt.IsZero():
		ps.lingerAt = time.Now().Add(ps.h.opts.Linger)
		// On the handler's goroutine, await times the linger on its own
		// timer: no goroutine for the timer to start, nor for the answer.
		if ps.host.Load() != hostHanded {
			ps.lingerT = time.AfterFunc(ps.h.opts.Linger, ps.expire)
		}
	}
	return nil
}

// Heartbeat is never called: the pump is started without heartbeats.
func (ps *pollSink) Heartbeat(bool, bool) error { return nil }

// Poked answers with what has been collected: the linger or the timeout
// has passed, a poll without a cursor answers at once, or a held client
// sent too much.
func (ps *pollSink) Poked() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.answered {
		ps.answerLocked(nil)
	}
	return nil
}

// End answers with the session's disconnect, if the poll has not been
// answered: the session failed (shutdown, slow consumer, gap) or the client
// left (then there is nobody to answer). The sink's writes do not fail: an
// answer that could not be written has been logged.
func (ps *pollSink) End(d session.Disconnect, _ error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.answered {
		ps.answerLocked(&d)
	}
}

// answerLocked answers once with the items collected, and end when the
// session has ended, then closes the session and lets the handler go.
// ps.mu must be held.
func (ps *pollSink) answerLocked(end *session.Disconnect) {
	ps.answered = true
	if ps.done != nil {
		defer close(ps.done)
	}
	if ps.lingerT != nil {
		ps.lingerT.Stop()
	}
	if ps.timeup != nil {
		ps.timeup.Stop()
	}
	if !ps.held {
		if ps.left {
			ps.s.Close(endOfPoll)
			return
		}
		_ = ps.h.finish(&ps.a, ps.s, ps.hello, ps.items, end, ps.cur) // logged; nothing else to do
		return
	}
	ps.stopping.Store(true)
	conn := ps.a.conn
	_ = conn.SetReadDeadline(aLongTimeAgo)
	<-ps.readerDone
	if ps.gone {
		ps.s.Close(endOfPoll)
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	// A connection is kept only when the server still takes it back, and not
	// after a disconnect (a shutdown, above all, must not wait for it).
	reuse := ps.h.cfg.Reuse
	ps.a.keep = ps.a.keep && !ps.overflow && end == nil && reuse.Accepting()
	err := ps.h.finish(&ps.a, ps.s, false, ps.items, end, ps.cur)
	switch {
	case err == nil && ps.a.keep:
		reuse.Reuse(conn, ps.pending)
	case err != nil:
		// The client did not take the answer within the write timeout (or
		// the kernel dropped it under the stall bound): a graceful close
		// would keep the unsent answer in FIN-WAIT-1.
		_ = netconn.Abort(conn)
	default:
		conn.Close()
	}
}

// hold hijacks the poll's connection and leaves the answer to the pump and
// a timeout of wait; false when the poll is being answered or the
// connection cannot be hijacked (HTTP/2, a wrapping writer), and the poll
// is then held on the handler's goroutine.
func (ps *pollSink) hold(w http.ResponseWriter, r *http.Request, wait time.Duration) bool {
	if r.ProtoMajor != 1 {
		return false
	}
	if !ps.unhost() {
		return false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.answered || len(ps.items) > 0 || ps.s.Pending() {
		return false // an answer is under way: not worth a hand-over
	}
	// A body left unread (a GET with one, a POST that is not a form) would
	// be read as the client's next request once the connection is handed
	// back: such a poll is held by net/http, which discards it.
	if n, err := io.CopyN(io.Discard, r.Body, 1); n > 0 || err != io.EOF {
		return false
	}
	header := w.Header()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	// Deadlines net/http set for the request would cut the hold. Bytes it
	// has buffered already (a pipelined request) go back with the connection.
	_ = conn.SetDeadline(time.Time{})
	h := ps.h
	ps.a.w, ps.a.conn, ps.a.header = nil, conn, header
	ps.a.keep = h.cfg.Reuse != nil && h.cfg.Reuse.Accepting() && r.ProtoAtLeast(1, 1) && !r.Close
	ps.held = true
	// The handler returns: nobody waits for done, and unhost has made sure
	// that Host gives no more turns through wake (each costs 96 B).
	ps.done, ps.wake = nil, nil
	ps.readerDone = make(chan struct{})
	if n := brw.Reader.Buffered(); n > 0 {
		ps.pending, _ = brw.Reader.Peek(n)
		ps.pending = append([]byte(nil), ps.pending...)
	}
	go ps.watch(conn)
	ps.timeup = time.AfterFunc(wait, ps.expire)
	ps.host.CompareAndSwap(hostGone, hostHeld) // the next turn starts hostAnswer
	return true
}

// watch reads the held connection until the answer stops it. A read error
// before that means the client has gone: the session ends, which makes the
// pump answer, and there is nobody to answer.
func (ps *pollSink) watch(conn io.Reader) {
	defer close(ps.readerDone)
	var b [64]byte
	for {
		n, err := conn.Read(b[:])
		if n > 0 {
			if len(ps.pending)+n > maxHeldBytes {
				ps.overflow = true
				ps.poke() // answer now, and close: nobody watches any more
				return
			}
			ps.pending = append(ps.pending, b[:n]...)
		}
		if err != nil {
			if !ps.stopping.Load() {
				ps.gone = true
				ps.s.Fail(endOfPoll)
			}
			return
		}
	}
}
