package sockjs

// This file holds every workaround for a defect of sockjs-go v3.0.3
// (github.com/igm/sockjs-go/v3/sockjs), each named by the upstream code it
// answers (file:line in v3.0.3), so that an upgrade is reviewed here, and
// a fixed defect removes its piece. ServeHTTP (sockjs.go) wires them to
// each request; the bridge (bridge.go) uses the link.
//
//  1. Unbounded send buffer, no delivery signal. session.sendMessage
//     (session.go:84-97) appends to sendBuffer whenever no receiver can
//     send, without bound, and Session.Send reports nothing about whether
//     the message reached a client. A client that stops polling would grow
//     the heap. Answered by link: receivers count what they write
//     (responseWriter.onWrite → link.written) and the bridge's write waits
//     until its message has left that buffer, so frames wait in the
//     session's bounded queue instead (3002 on overflow).
//  2. No write deadlines on HTTP receivers. httpReceiver.sendBulk
//     (httpreceiver.go:63-90) writes and flushes the ResponseWriter under
//     the session's lock (session.go:91) with no deadline: a client that
//     stops reading blocks the session's writer for good. Answered by
//     responseWriter: a fresh deadline of the write timeout on every Write
//     and Flush, and an abort, not a graceful close, for a stream given up.
//  3. The 2010 race of polling transports. attachReceiver
//     (session.go:100-105) refuses a receiver while the previous one is
//     attached, and the previous one is detached by a goroutine of its own
//     (session.go:108-116) after its answer. A client that polls again at
//     once can arrive first and is answered c[2010,"Another connection
//     still open"], on which sockjs-client gives up a healthy session.
//     Answered by retryPoll: a poll whose whole answer is that frame is
//     served again after a moment (pollRetries × pollRetryWait).
//  4. No read limit. The WebSocket transport reads with gorilla's ReadJSON
//     (websocket.go:33; rawwebsocket.go:36 ReadMessage) on a connection it
//     never gives a read limit, and xhr_send and jsonp_send decode the body
//     unbounded (xhr.go:22, jsonp.go:55-56). gorilla's Conn is sockjs-go's,
//     not ours: only the net.Conn Hijack returns is. Answered by limitConn
//     (frameLimiter follows the client's frame headers and stops a message
//     past the limit before gorilla reads it) and by Handler.readBody for
//     the send requests (sockjs.go).
//  5. Any origin with credentials. The CORS headers (web.go:35-39) echo
//     whatever Origin comes, with Allow-Credentials: ServeHTTP checks the
//     origin first, and the bridge never authenticates by cookie.
//  6. Client text decoded to U+FFFD. ReadJSON (websocket.go:33) decodes each
//     message, a JSON array of strings, with encoding/json, which turns
//     invalid UTF-8 and \u escapes of lone surrogates into U+FFFD: the
//     commands inside then pass the UTF-8 check every command gets, so that
//     two different invalid idempotency keys became one (found 2026-12-07).
//     Answered by limitConn too: it holds each data message back until its
//     last frame, checks its payload with session.ValidJSONText, and passes
//     on either the message's own frames or, for text that is not, a
//     stand-in message the bridge answers with the 400 error frame a
//     WebSocket client gets (see link.notText).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/waterspout/waterspout/session"
)

// link is what the HTTP side of a SockJS session shares with its bridge: how
// many frames have been written to its receiving requests, and a way to fail
// the session from a request (an oversized xhr_send or WebSocket message).
//
// sockjs-go buffers whatever Session.Send is given while no receiver can
// take it (between two polls, between two streaming requests), without
// bound. After a Send that wrote nothing the bridge therefore waits until
// sockjs-go has written that buffer to the next receiver before it takes
// more from the session's bounded queue: a client that stops polling
// overflows that queue (3002) instead of the heap.
type link struct {
	refs int // guarded by links.mu
	// owner is the digest of the token query of the request that opened
	// the session, set by its bridge (see links.own); ownerSet until then
	// is false. Guarded by links.mu.
	owner    [sha256.Size]byte
	ownerSet bool
	// websocket links have one receiver for the whole session, written to
	// directly: there Send never buffers.
	websocket bool
	// notText, on a websocket link, is the SockJS message limitConn passes
	// on in place of one that is not UTF-8 JSON text: a random string of
	// the connection that only the server knows, so that a client cannot
	// send it. Passing the stand-in through sockjs-go, rather than telling
	// the session aside, keeps the 400 error frame in order with the
	// answers to the messages before and after it.
	notText string

	mu     sync.Mutex
	writes uint64        // frames written to receiving requests
	wrote  chan struct{} // closed (and replaced) at every such write
	sess   *session.Session
	failed *session.Disconnect // a failure that came before the session was bound
}

func newLink() *link { return &link{wrote: make(chan struct{})} }

// written records a frame written to a receiving request. It runs under
// sockjs-go's session lock (a receiver's write) and takes l.mu, a leaf
// there.
func (l *link) written() {
	l.mu.Lock()
	l.writes++
	close(l.wrote)
	l.wrote = make(chan struct{})
	l.mu.Unlock()
}

// writeCount returns the frames written so far and a channel closed at the
// next write.
func (l *link) writeCount() (uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes, l.wrote
}

// bind makes s the session that fail ends. Neither l.mu nor s's lock may be
// held on entry.
func (l *link) bind(s *session.Session) {
	l.mu.Lock()
	l.sess = s
	if l.failed != nil {
		s.Fail(*l.failed)
		l.failed = nil
	}
	l.mu.Unlock()
}

func (l *link) unbind(s *session.Session) {
	l.mu.Lock()
	if l.sess == s {
		l.sess = nil
	}
	l.mu.Unlock()
}

// fail ends the bound session with d, or the next one bound. It takes
// l.mu, then the session's lock (Session.Fail); neither may be held on
// entry.
func (l *link) fail(d session.Disconnect) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess != nil {
		l.sess.Fail(d)
		return
	}
	l.failed = &d
}

// links holds the links of the HTTP-transport sessions by SockJS session id,
// as sockjs-go holds its sessions. A link lives while a request or a bridge
// holds it.
type links struct {
	mu sync.Mutex
	m  map[string]*link
}

func (ls *links) acquire(id string) *link {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[id]
	if l == nil {
		l = newLink()
		ls.m[id] = l
	}
	l.refs++
	return l
}

func (ls *links) release(id string, l *link) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l.refs--
	if l.refs == 0 && ls.m[id] == l {
		delete(ls.m, id)
	}
}

// tokenDigest is what binds a SockJS session to its client: the digest of
// the request's token query parameter, which sockjs-client repeats on every
// request of the session ("" when there is none).
func tokenDigest(r *http.Request) [sha256.Size]byte {
	return sha256.Sum256([]byte(r.URL.Query().Get("token")))
}

// own records owner as the owner of l, the link of session id.
func (ls *links) own(l *link, owner [sha256.Size]byte) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l.owner, l.ownerSet = owner, true
}

// ownedBy reports whether a request with the token digest d may use l:
// l has no owner yet, or d is its owner's. The session id in a SockJS URL
// is chosen by the client and travels in the path, which proxies log even
// when told to drop query strings: on its own it must not be a credential.
func (ls *links) ownedBy(l *link, d [sha256.Size]byte) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return !l.ownerSet || subtle.ConstantTimeCompare(l.owner[:], d[:]) == 1
}

func (ls *links) lookup(id string) *link {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.m[id]
}

// linkKey carries a WebSocket request's link to its bridge, through the
// request sockjs-go hands the session.
type linkKey struct{}

// responseWriter is what sockjs-go writes every response through. Its HTTP
// receivers write synchronously, under the SockJS session's lock, with no
// deadline of their own: a client that stops reading would block them, and
// with them the session's writer, forever.
//
// A streaming response lives for minutes, so one deadline set when the
// request starts would cut healthy streams. Instead every Write and Flush
// gets a fresh deadline of the write timeout. On HTTP/1 the deadline then
// stays until the next write, so that what net/http writes after the handler
// (the end of a chunked body) is bounded too; net/http clears it when the
// request is done, so a kept-alive connection does not carry it into its
// next request. On HTTP/2 it is cleared after each flush, because a stream
// whose deadline expires, even idle, is reset.
//
// sockjs-go asserts http.Flusher on the writer and gorilla asserts
// http.Hijacker; Unwrap lets http.ResponseController reach the server's own
// writer.
type responseWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	h2      bool
	// dirty is set when something was written after the last flush.
	dirty    bool
	hijacked bool
	// wrapConn, if set, wraps the connection of a WebSocket upgrade.
	wrapConn func(net.Conn) net.Conn
	// onWrite, if set, is called before every Write that is not part of
	// the prelude.
	onWrite func()
	// prelude is set while the response has not been flushed yet.
	prelude bool
	// onDone, if set, is called when the response has ended well: a
	// stream's connection is armed to abort when net/http closes it
	// (netconn.AbortOnClose), since net/http closes it inside a write
	// that failed, and disarmed here, so that a clean end closes, if at
	// all, gracefully.
	onDone func()
}

var (
	_ http.Flusher  = (*responseWriter)(nil)
	_ http.Hijacker = (*responseWriter)(nil)
)

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseWriter) WriteHeader(code int) {
	w.dirty = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.onWrite != nil && !w.prelude {
		w.onWrite()
	}
	w.dirty = true
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.ResponseWriter.Write(p)
}

func (w *responseWriter) Flush() { _ = w.flush() }

func (w *responseWriter) flush() error {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	err := w.rc.Flush()
	if w.h2 {
		_ = w.rc.SetWriteDeadline(time.Time{})
	}
	w.dirty = false
	w.prelude = false
	return err
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := w.rc.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	if w.wrapConn != nil {
		c = w.wrapConn(c)
	}
	return c, brw, nil
}

// finish runs when sockjs-go's handler has returned (nothing writes after
// that: its receivers are closed before the handler returns). What is still
// buffered goes out under a deadline, and on HTTP/1 what net/http writes
// last gets one too. When the request context has ended, the client is gone
// or a write failed: nothing is flushed.
func (w *responseWriter) finish(ctx context.Context) {
	if w.hijacked {
		return
	}
	ok := ctx.Err() == nil
	if w.dirty && ok {
		ok = w.flush() == nil
	}
	if ok && w.onDone != nil {
		w.onDone()
	}
	if !w.h2 || ctx.Err() != nil {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	}
}

// sockjs-go (v3.0.3) detaches an answered poll in a goroutine of its own. A
// client that polls again at once, as it should, can arrive before that
// goroutine runs and be answered c[2010,"Another connection still open"]:
// sockjs-client then gives up on a healthy session. A polling request
// (xhr, jsonp) whose answer is exactly that is therefore served again after a
// moment. A genuine second poll of a session still gets 2010 once the
// retries run out.
const (
	pollRetries   = 50
	pollRetryWait = 2 * time.Millisecond
)

var stillOpen = []byte(`2010,\"Another connection still open\"`)
var stillOpenPlain = []byte(`2010,"Another connection still open"`)

// retryPoll serves a polling request through next, again while it answers 2010.
func retryPoll(w *responseWriter, r *http.Request, next http.Handler) {
	for attempt := 0; ; attempt++ {
		pw := &pollWriter{real: w, header: w.Header().Clone(), retryable: attempt < pollRetries}
		next.ServeHTTP(pw, r)
		if !pw.stillOpen || r.Context().Err() != nil {
			if !pw.decided { // nothing was written: pass the status and headers on
				pw.commit()
			}
			return
		}
		time.Sleep(pollRetryWait)
	}
}

// pollWriter holds back the status and headers of a poll answer until its
// first write. If that write is the 2010 frame (one write, as sockjs-go's
// frame writers make it) it is dropped so the request can be served again;
// anything else passes straight through, so write errors still reach
// sockjs-go.
type pollWriter struct {
	real      *responseWriter
	header    http.Header
	status    int
	retryable bool
	decided   bool // the first write has happened
	stillOpen bool // and it was a 2010 that will be retried
}

func (p *pollWriter) Header() http.Header {
	if p.decided && !p.stillOpen {
		return p.real.Header()
	}
	return p.header
}

func (p *pollWriter) WriteHeader(status int) {
	if !p.decided {
		if p.status == 0 {
			p.status = status
		}
		return
	}
	if !p.stillOpen {
		p.real.WriteHeader(status)
	}
}

func (p *pollWriter) Write(b []byte) (int, error) {
	if !p.decided {
		p.decided = true
		if p.retryable && len(b) < 256 && (bytes.Contains(b, stillOpen) || bytes.Contains(b, stillOpenPlain)) {
			p.stillOpen = true
			return len(b), nil
		}
		p.commit()
	}
	if p.stillOpen {
		return len(b), nil
	}
	return p.real.Write(b)
}

func (p *pollWriter) Flush() {
	if p.decided && !p.stillOpen {
		p.real.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer's deadlines.
func (p *pollWriter) Unwrap() http.ResponseWriter { return p.real }

// commit sends the held status and headers to the real writer.
func (p *pollWriter) commit() {
	h := p.real.Header()
	for k, v := range p.header {
		h[k] = v
	}
	if p.status != 0 {
		p.real.WriteHeader(p.status)
	}
}

// sockjs-go reads WebSocket messages with gorilla's ReadJSON and never sets a
// read limit, so one client message could grow without bound in memory. The
// connection it reads from is the one Hijack returns, so that connection
// (limitConn) follows the client's frame headers and stops a message that
// grows past the limit before gorilla sees its first byte.

// maxFragments bounds the frames of one message: limitConn holds a message's
// frames, headers included, until its last one, and empty fragments would
// otherwise cost header bytes without counting against the limit. No client
// fragments a command into a thousand frames.
const maxFragments = 1024

// frameLimiter follows the frames a WebSocket client sends (RFC 6455 §5.2):
// it reads each header, skips the payload, and adds the payload lengths of a
// message's data frames. It does not validate frames: gorilla does. With a
// sink it also hands the stream over cut at frame boundaries.
type frameLimiter struct {
	limit   uint64
	sink    frameSink // nil: nothing is handed over
	hdr     [14]byte  // the longest header: 2 + 8 length bytes + 4 mask bytes
	hdrLen  int       // bytes of the current header seen so far
	payload uint64    // payload bytes of the current frame still to come
	message uint64    // payload bytes of the current message so far, ≤ limit
	frames  int       // data frames of the current message so far
}

// frameSink receives what a frameLimiter has followed: each frame's complete
// header (once it has passed the limit), its payload in pieces, and its end.
type frameSink interface {
	header(h []byte)
	payload(p []byte)
	frameEnd()
}

// headerLen is the length of the header that starts with hdr (at least 2
// bytes must be known to tell).
func headerLen(hdr []byte) int {
	if len(hdr) < 2 {
		return 2
	}
	n := 2
	switch hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if hdr[1]&0x80 != 0 { // masked, as every client frame is
		n += 4
	}
	return n
}

// feed consumes the next bytes of the stream. When a data frame's header
// takes its message past the limit, it returns over and the number of bytes
// of p before that header (which may be passed on: they end earlier frames);
// otherwise len(p). Once over, the limiter must not be fed again.
func (f *frameLimiter) feed(p []byte) (pass int, over bool) {
	start := 0 // where the header being read began in p (0 if in an earlier p)
	for i := 0; i < len(p); {
		if f.payload > 0 {
			n := min(uint64(len(p)-i), f.payload)
			f.payload -= n
			if f.sink != nil {
				f.sink.payload(p[i : i+int(n)])
				if f.payload == 0 {
					f.sink.frameEnd()
				}
			}
			i += int(n)
			continue
		}
		if f.hdrLen == 0 {
			start = i
		}
		f.hdr[f.hdrLen] = p[i]
		f.hdrLen++
		i++
		if f.hdrLen < headerLen(f.hdr[:f.hdrLen]) {
			continue
		}
		var length uint64
		switch f.hdr[1] & 0x7f {
		case 126:
			length = uint64(binary.BigEndian.Uint16(f.hdr[2:4]))
		case 127:
			length = binary.BigEndian.Uint64(f.hdr[2:10])
		default:
			length = uint64(f.hdr[1] & 0x7f)
		}
		hdrLen := f.hdrLen
		f.hdrLen = 0
		f.payload = length
		opcode := f.hdr[0] & 0x0f
		if opcode&0x08 == 0 { // a control frame, between fragments or alone, is not part of a message
			if opcode != 0 { // text or binary: a new message (0 continues one)
				f.message, f.frames = 0, 0
			}
			if length > f.limit-f.message || f.frames == maxFragments {
				return start, true
			}
			f.message += length
			f.frames++
		}
		if f.sink != nil {
			f.sink.header(f.hdr[:hdrLen])
			if length == 0 {
				f.sink.frameEnd()
			}
		}
	}
	return len(p), false
}

// limitConn is the connection gorilla reads a SockJS WebSocket from. It
// passes control frames on as they come and holds each data message back
// until its last frame: then it passes the message's own frames on, or, when
// the message is well formed but its payload is not UTF-8 JSON text
// (session.ValidJSONText), notText instead. A control frame that came
// between a message's fragments thus reaches gorilla before them, which RFC
// 6455 §5.4 allows and gorilla handles the same. What gorilla would refuse (a
// continuation with no message, reserved bits) is passed on unchanged for
// it to refuse. A message in flight costs its payload twice (held and
// unmasked), at most 2×limit plus its headers.
type limitConn struct {
	net.Conn
	lim   frameLimiter
	grace time.Duration
	over  func()
	// notText is a whole masked client frame passed on in place of a
	// message that is not text.
	notText []byte
	buf     [1024]byte // what was last read from Conn

	// The rest is only touched by the reading goroutine.
	ready   []byte // bytes gorilla may read, from off on
	off     int
	err     error  // the last read's error, returned once ready is empty
	held    []byte // the frames of the current data message so far
	text    []byte // its payload, unmasked
	pass    bool   // the current frame goes straight to ready
	fin     bool   // the current frame ends its message
	fine    bool   // the held message is a well-formed one gorilla would decode
	mask    [4]byte
	maskPos int
	// tripped is set once a message went over the limit.
	tripped bool
}

var _ frameSink = (*limitConn)(nil)

func newLimitConn(c net.Conn, limit int64, grace time.Duration, over func(), notText []byte) *limitConn {
	lc := &limitConn{Conn: c, grace: grace, over: over, notText: notText}
	lc.lim = frameLimiter{limit: uint64(limit), sink: lc}
	return lc
}

// Read passes the client's bytes on, a data message once it is whole, until a
// message goes over the limit. Then it calls over (which fails the session, so
// that its writer sends the disconnect and close frames and sockjs-go closes
// this connection) and never returns data again.
func (c *limitConn) Read(p []byte) (int, error) {
	for c.off == len(c.ready) {
		if cap(c.ready) > 64<<10 { // a burst's memory is not kept for an idle connection
			c.ready = nil
		}
		c.ready, c.off = c.ready[:0], 0
		if err := c.err; err != nil {
			c.err = nil
			return 0, err
		}
		if c.tripped {
			return 0, c.drain()
		}
		n, err := c.Conn.Read(c.buf[:])
		if _, over := c.lim.feed(c.buf[:n]); over {
			c.tripped = true
			c.held, c.text = nil, nil
			c.over()
		}
		c.err = err
	}
	n := copy(p, c.ready[c.off:])
	c.off += n
	return n, nil
}

// header starts a frame (frameSink).
func (c *limitConn) header(h []byte) {
	op := h[0] & 0x0f
	c.fin = h[0]&0x80 != 0
	c.maskPos = 0
	c.mask = [4]byte{}
	if h[1]&0x80 != 0 {
		copy(c.mask[:], h[len(h)-4:])
	}
	switch {
	case op&0x08 != 0, op == 0 && len(c.held) == 0: // control, or a continuation of nothing
		c.pass = true
		c.ready = append(c.ready, h...)
		return
	case op != 0 && len(c.held) > 0: // a new message before the last one ended
		c.release(c.held)
	}
	if len(c.held) == 0 {
		c.fine = op == 1 || op == 2
	}
	if h[0]&0x70 != 0 || h[1]&0x80 == 0 { // reserved bits, or unmasked
		c.fine = false
	}
	c.pass = false
	c.held = append(c.held, h...)
}

// payload takes a piece of the current frame's payload (frameSink).
func (c *limitConn) payload(p []byte) {
	if c.pass {
		c.ready = append(c.ready, p...)
		return
	}
	c.held = append(c.held, p...)
	n := len(c.text)
	c.text = append(c.text, p...)
	for i := range p {
		c.text[n+i] ^= c.mask[(c.maskPos+i)&3]
	}
	c.maskPos += len(p)
}

// frameEnd ends the current frame (frameSink): the last one of a held
// message releases it.
func (c *limitConn) frameEnd() {
	if c.pass || !c.fin {
		return
	}
	if c.fine && !session.ValidJSONText(c.text) {
		c.release(c.notText)
	} else {
		c.release(c.held)
	}
}

// release passes frames on in place of the held message and forgets it.
func (c *limitConn) release(frames []byte) {
	c.ready = append(c.ready, frames...)
	if cap(c.held) > 64<<10 {
		c.held, c.text = nil, nil
	}
	c.held, c.text = c.held[:0], c.text[:0]
}

// drain discards what the client still sends until the connection closes:
// leaving it unread would make the close reset the connection, and the
// client could lose the close frame on its way. The read deadline ends the
// wait if the session does not close this connection in time.
func (c *limitConn) drain() error {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.grace))
	var buf [512]byte
	for {
		if _, err := c.Conn.Read(buf[:]); err != nil {
			return err
		}
	}
}

// notTextFrame is the masked client frame of the SockJS message [marker]:
// what the bridge gets in place of a message that was not text. marker is
// short (a rand.Text): the frame has the 7-bit length form.
func notTextFrame(marker string) []byte {
	payload, _ := json.Marshal([]string{marker})
	f := []byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0} // FIN text, masked with the zero key
	return append(f, payload...)
}
