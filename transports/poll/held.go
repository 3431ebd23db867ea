package poll

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/session"
)

// A poll with a cursor and nothing to answer yet is held: up to
// Options.Timeout, until something is queued or the session ends. Held in
// net/http past Options.Detach, it would keep the handler's goroutine (with a deep stack), the
// connection's background reader, and net/http's read, write and chunking
// buffers, about 30 KB. So on HTTP/1.x the handler hijacks the connection
// and returns: a held poll is then its session, a timer, this struct and
// one goroutine with a shallow stack, blocked in a read to notice a client
// that leaves. When the session wakes it (or the timer fires), a goroutine
// stops the reader, collects the answer as an unheld poll would, writes it
// on the connection, and hands the connection back to the HTTP server for
// the client's next poll (transports.Config.Reuse), or closes it.
type heldPoll struct {
	h     *Handler
	s     *session.Session
	a     answer
	cur   session.Cursor
	timer atomic.Pointer[time.Timer]
	// started is set once the answer is under way; stopping once it has
	// asked the reader to stop.
	started, stopping atomic.Bool
	readerDone        chan struct{}
	// Written by the reader, read once readerDone is closed: the client left;
	// bytes it sent while held (a pipelined request), handed back with the
	// connection; more of them than maxHeldBytes.
	gone     bool
	pending  []byte
	overflow bool
}

// maxHeldBytes bounds what a held poll keeps of bytes its client sends
// before the answer. A browser sends none; past this the connection closes
// after the answer.
const maxHeldBytes = 8 << 10

// aLongTimeAgo is a read deadline that stops a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// hold hijacks the poll's connection and arranges for the answer; false
// when the connection cannot be hijacked (HTTP/2, a wrapping writer), and
// the poll is then held on the handler's goroutine.
func (h *Handler) hold(w http.ResponseWriter, r *http.Request, s *session.Session, a answer, cur session.Cursor, wait time.Duration) bool {
	if r.ProtoMajor != 1 {
		return false
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
	a.w, a.conn, a.header = nil, conn, header
	a.keep = h.cfg.Reuse != nil && h.cfg.Reuse.Accepting() && r.ProtoAtLeast(1, 1) && !r.Close
	hp := &heldPoll{h: h, s: s, a: a, cur: cur, readerDone: make(chan struct{})}
	if n := brw.Reader.Buffered(); n > 0 {
		hp.pending, _ = brw.Reader.Peek(n)
		hp.pending = append([]byte(nil), hp.pending...)
	}
	go hp.watch()
	s.SetWakeup(hp.start)
	t := time.AfterFunc(wait, hp.start)
	hp.timer.Store(t)
	if hp.started.Load() { // the answer began before the timer was stored
		t.Stop()
	}
	return true
}

// start runs the answer once, on a goroutine of its own (it is called with
// the session's lock held, by the timer, or by the reader).
func (hp *heldPoll) start() {
	if hp.started.CompareAndSwap(false, true) {
		go hp.answer()
	}
}

// watch reads the held connection until the answer stops it. A read error
// before that means the client has gone: the session ends, which starts the
// answer, and there is nobody to answer.
func (hp *heldPoll) watch() {
	defer close(hp.readerDone)
	var b [64]byte
	for {
		n, err := hp.a.conn.Read(b[:])
		if n > 0 {
			if len(hp.pending)+n > maxHeldBytes {
				hp.overflow = true
				hp.start() // answer now, and close: nobody watches any more
				return
			}
			hp.pending = append(hp.pending, b[:n]...)
		}
		if err != nil {
			if !hp.stopping.Load() {
				hp.gone = true
				hp.s.Fail(endOfPoll)
			}
			return
		}
	}
}

func (hp *heldPoll) answer() {
	if t := hp.timer.Load(); t != nil {
		t.Stop()
	}
	hp.stopping.Store(true)
	conn := hp.a.conn
	_ = conn.SetReadDeadline(aLongTimeAgo)
	<-hp.readerDone
	if hp.gone {
		hp.s.Close(endOfPoll)
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	items, end, _ := hp.h.collect(context.Background(), hp.s, 0, true) // no context to end: the session does
	// A connection is kept only when the server still takes it back, and not
	// after a disconnect (a shutdown, above all, must not wait for it).
	hp.a.keep = hp.a.keep && !hp.overflow && end == nil && hp.h.cfg.Reuse.Accepting()
	err := hp.h.finish(&hp.a, hp.s, false, items, end, hp.cur)
	if err == nil && hp.a.keep {
		hp.h.cfg.Reuse.Reuse(conn, hp.pending)
		return
	}
	if err != nil {
		// The client did not take the answer within the write timeout (or
		// the kernel dropped it under the stall bound): a graceful close
		// would keep the unsent answer in FIN-WAIT-1.
		_ = netconn.Abort(conn)
		return
	}
	conn.Close()
}
