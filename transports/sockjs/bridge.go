package sockjs

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime/debug"

	sockjs "github.com/igm/sockjs-go/v3/sockjs"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// connectionLost is why a session ended when the client, not the server,
// ended it: the SockJS session closed (the client closed its WebSocket, its
// HTTP request broke, or it did not come back within the disconnect delay).
// It is recorded by Session.Close (logs, metrics) and never sent.
var connectionLost = session.Disconnect{Code: 1006, Reason: "connection lost"}

// bridge ties one SockJS session to one session.Session. Its writer is a
// transports.Pump with the bridge as its blocking Sink: it holds no
// goroutine while the session is idle, like the WebSocket and SSE writers.
// Its reader is a goroutine of its own.
type bridge struct {
	h    *Handler
	sj   sockjs.Session
	s    *session.Session
	link *link
	// release drops the bridge's hold on an HTTP session's link.
	release func()
	ctx     context.Context
	cancel  context.CancelFunc
	// readerDone is closed when the reader has returned; nil until it runs.
	readerDone chan struct{}
	// reason, when set, is why the session ends: a refusal before the
	// session existed, or a panic. Otherwise the session's own reason.
	reason *session.Disconnect
	// buf is the last batch's message, kept for the next (pump only).
	buf []byte
}

var _ transports.Sink = (*bridge)(nil)

// serveSession is sockjs-go's handler function: it runs in a goroutine
// sockjs-go starts, outside any HTTP middleware. It opens the session, sends
// the hello frame and hands the writing to a pump; sockjs-go does not end a
// session when this function returns. A session that does not get that far
// is finished here.
func (h *Handler) serveSession(sj sockjs.Session) {
	b := &bridge{h: h, sj: sj}
	pumped := false
	defer func() {
		if !pumped {
			b.finish()
		}
	}()
	defer b.recoverPanic()
	if !b.open() {
		return
	}
	b.readerDone = make(chan struct{})
	go b.readLoop()
	if !b.send(string(b.s.Hello())) {
		return
	}
	// A client that leaves ends the SockJS session's context; the server's
	// end (h.cfg.Context) fails the session with DisconnectShutdown in the pump.
	stop := context.AfterFunc(sj.Context(), func() { b.s.Fail(connectionLost) })
	cancel := b.cancel
	b.cancel = func() { stop(); cancel() }
	h.cfg.Writers.StartPump(h.cfg.Context, b.s, b, h.node.Ping(), h.log)
	pumped = true
}

// open finds the session's link, creates the session and authenticates it.
func (b *bridge) open() bool {
	h := b.h
	b.ctx, b.cancel = context.WithCancel(h.cfg.Context)
	stop := context.AfterFunc(b.sj.Context(), b.cancel)
	cancel := b.cancel
	b.cancel = func() { stop(); cancel() }

	if l, ok := b.sj.Request().Context().Value(linkKey{}).(*link); ok {
		b.link = l // a WebSocket session: its request is its only receiver
	} else {
		id := b.sj.ID()
		b.link = h.links.acquire(id)
		l := b.link
		h.links.own(l, tokenDigest(b.sj.Request()))
		b.release = func() { h.links.release(id, l) }
	}
	s, refused := h.cfg.Open(b.ctx, transports.Opening{
		Transport: Transport,
		Auth:      b.authRequest(),
		// Bound before authentication, so that a failure the link saw
		// first (an oversized message) ends it.
		Prepare:     func(s *session.Session) { b.s = s; b.link.bind(s) },
		Framed:      true,
		KeepRefused: true, // refused before hello: the client gets the disconnect frame only
	})
	if refused != nil {
		if s == nil {
			b.refuse(refused.Disconnect)
		}
		return false
	}
	return true
}

func (b *bridge) refuse(d session.Disconnect) { b.reason = &d }

// authRequest is the request Config.Authenticate sees, nil for none: only
// one with a `token` query parameter. A SockJS session is never
// authenticated by cookie: sockjs-go allows any origin's credentials, and
// JSONP and htmlfile requests cannot be origin-checked. Without a token the
// session is anonymous until it sends an `auth` command or a token in
// `subscribe`.
func (b *bridge) authRequest() *http.Request {
	r := b.sj.Request()
	if !r.URL.Query().Has("token") {
		return nil
	}
	r = r.Clone(b.ctx)
	r.Header.Del("Cookie")
	return r
}

// readLoop passes every client message to the session. sockjs-go hands
// messages over an unbuffered channel, so it runs for the whole session, even
// after the session has failed (then discarding): an xhr_send nobody receives
// would hang.
func (b *bridge) readLoop() {
	defer close(b.readerDone)
	for {
		msg, err := b.sj.Recv()
		if err != nil {
			return // the SockJS session is closing
		}
		b.handle(msg)
	}
}

func (b *bridge) handle(msg string) {
	defer func() {
		if v := recover(); v != nil {
			b.panicked("reader", v)
		}
	}()
	if b.s.Done() {
		return
	}
	if b.link.websocket && msg == b.link.notText {
		// The client's message was not text (see limitConn): answered as
		// the WebSocket transport answers such a frame, and charged as one.
		_ = b.s.HandleCommand(b.ctx, notUTF8)
		return
	}
	// An error means the session has ended; the writer closes it.
	_ = b.s.HandleCommand(b.ctx, []byte(msg))
}

// notUTF8 is a frame HandleCommand refuses as not UTF-8: the 400 error frame
// "malformed command: not valid UTF-8 …" with no id, as a WebSocket client
// gets for a frame that is not text.
var notUTF8 = []byte{0xff}

// WriteBatch sends a batch the session queued as one SockJS message of
// objects separated by "\n". The pump is the only caller of sj.Send once the
// hello frame is out, so the session has one writer.
func (b *bridge) WriteBatch(batch []session.Item) error {
	buf := b.buf[:0]
	for i := range batch {
		if i > 0 {
			buf = append(buf, '\n')
		}
		buf = append(buf, batch[i].Frame...)
	}
	b.buf = buf
	if cap(b.buf) > 64<<10 { // do not keep a burst's memory for an idle session
		b.buf = nil
	}
	return b.sendErr(string(buf))
}

// Heartbeat sends a ping frame when the session has been idle: SockJS
// cannot ask the client for proof of life, so there is nothing to probe.
func (b *bridge) Heartbeat(idle, _ bool) error {
	if !idle {
		return nil
	}
	return b.sendErr(string(session.PingFrame))
}

// End records why writing stopped and finishes the session (see finish). It
// runs on the pump's own goroutine, where finish may block.
func (b *bridge) End(_ session.Disconnect, writeErr error) {
	switch {
	case errors.Is(writeErr, transports.ErrPumpPanicked):
		d := session.DisconnectInternal // the pump has logged it and failed the session
		b.reason = &d
	case writeErr != nil:
		b.s.Fail(writeFailure(writeErr))
	}
	b.finish()
}

// send writes one SockJS message; a failed write ends the session.
func (b *bridge) send(msg string) bool {
	if err := b.sendErr(msg); err != nil {
		b.s.Fail(writeFailure(err))
		return false
	}
	return true
}

// sendErr writes one SockJS message. A write canceled by the bridge's
// context is no error: the session has ended, or is about to, and the pump
// finds out why.
func (b *bridge) sendErr(msg string) error {
	err := b.write(msg, b.ctx.Done())
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// writeFailure is the reason a session ends after a failed write.
func writeFailure(err error) session.Disconnect {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return session.DisconnectWriteTimeout
	}
	return connectionLost
}

// write hands msg to sockjs-go, waiting out its unbounded buffer (defect 1
// in upstream.go). With a receiver attached, sockjs-go writes it
// synchronously under a write deadline (WebSocket: its write timeout; HTTP:
// responseWriter), so a stalled client returns an error here instead of
// blocking. Without one (a poll that has just been answered, a stream at its
// response limit, a request not attached yet) sockjs-go buffers it: write
// then waits until the next receiver has taken it, so that at most one
// message ever waits there.
func (b *bridge) write(msg string, cancel <-chan struct{}) error {
	before, _ := b.link.writeCount()
	if err := b.sj.Send(msg); err != nil {
		return err
	}
	if b.link.websocket {
		return nil
	}
	for {
		n, wrote := b.link.writeCount()
		if n != before {
			return nil
		}
		select {
		case <-wrote:
		case <-cancel:
			return context.Canceled
		case <-b.sj.Context().Done():
			return sockjs.ErrSessionNotOpen
		}
	}
}

// recoverPanic turns a panic in open or in the hello into a 3006
// disconnect: this goroutine runs outside echo's Recover. The pump recovers
// its own (see End).
func (b *bridge) recoverPanic() {
	if v := recover(); v != nil {
		b.panicked("session", v)
		d := session.DisconnectInternal
		b.reason = &d
	}
}

func (b *bridge) panicked(where string, v any) {
	id := ""
	if b.s != nil {
		id = b.s.ID()
		b.s.Fail(session.DisconnectInternal)
	}
	b.h.log.Error("panic in sockjs "+where, "session", id, "panic", v, "stack", string(debug.Stack()))
}

// finish ends the session: unless the client is gone, a disconnect frame and
// a SockJS close frame with the same code and reason; then, once the reader
// has stopped, Session.Close.
func (b *bridge) finish() {
	d := connectionLost
	switch {
	case b.reason != nil:
		d = *b.reason
	case b.s != nil:
		d = b.s.Reason()
	}
	if d != connectionLost && b.link != nil && b.sj.Context().Err() == nil {
		// A polling client may be between requests: give it a moment to
		// come back for the disconnect frame, or sockjs-go would drop the
		// frame when the close frame replaces its buffer. sockjs-go ends a
		// session whose client stays away for the disconnect delay.
		wait, cancel := context.WithTimeout(b.sj.Context(), b.h.cfg.WriteTimeout)
		_ = b.write(string(session.DisconnectFrame(d)), wait.Done())
		cancel()
	}
	// Closing ends Recv, so the reader returns; it is idempotent.
	_ = b.sj.Close(uint32(d.Code), d.Reason)
	if b.cancel != nil {
		b.cancel() // a command still running in the reader (a broker call) stops
	}
	if b.readerDone != nil {
		<-b.readerDone
	}
	if b.s != nil {
		b.link.unbind(b.s)
		b.s.Close(d)
		b.h.log.Debug("sockjs session closed", "session", b.s.ID(), "code", d.Code, "reason", d.Reason)
	}
	if b.release != nil {
		b.release()
	}
}
