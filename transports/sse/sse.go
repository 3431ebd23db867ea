package sse

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// Transport is the transport name in the hello frame.
const Transport = "sse"

// RetryInterval is sent as the stream's `retry:` field: how long a browser's
// EventSource waits before it reconnects by itself.
const RetryInterval = 2 * time.Second

// maxKeptBuffer bounds the write buffer kept between batches, so a burst does
// not leave its memory behind on an idle stream.
const maxKeptBuffer = 16 << 10

// clientGone is recorded when the client ends the stream: the same reason
// (and metrics label) as a WebSocket client that leaves. connectionLost is
// a connection that failed before the stream began.
var (
	clientGone     = session.ClosedByClient
	connectionLost = session.ConnectionLost
)

var errNoStreaming = &session.Error{Code: http.StatusInternalServerError, Reason: "streaming not supported"}

// Handler serves GET /connect/sse.
type Handler struct {
	cfg transports.Config
	log *slog.Logger
}

var _ http.Handler = (*Handler)(nil)

// New returns the SSE handler. Everything it needs is in transports.Config.
func New(cfg transports.Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sse: %w", err)
	}
	return &Handler{cfg: cfg, log: cfg.Logger.With("transport", Transport)}, nil
}

// ServeHTTP checks the request, subscribes its channels, then streams.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !transports.Admit(w, r, h.cfg.CheckOrigin, "GET, OPTIONS") {
		return
	}
	node := h.cfg.Node
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		transports.WriteError(w, &session.Error{Code: http.StatusBadRequest, Reason: "malformed query"})
		return
	}
	req, err := transports.ParseStreamRequest(q, r.Header.Get("Last-Event-ID"), node.Limits().MaxChannels)
	if err != nil {
		transports.WriteError(w, err)
		return
	}
	// The server's WriteTimeout would cut every stream; each write sets its
	// own deadline instead. A writer that cannot take deadlines (a wrapping
	// middleware) would let a stalled client pin the writer: refuse.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
		h.cfg.Logger.Error("sse: response writer without deadlines", "transport", Transport, "err", err)
		transports.WriteError(w, errNoStreaming)
		return
	}
	s, refused := h.cfg.Open(r.Context(), transports.Opening{Transport: Transport, Auth: r, Stream: &req})
	if refused != nil {
		transports.WriteError(w, refused.Status)
		return
	}
	h.stream(w, r, s, req.Positions)
}

// stream sends the response head and the hello event, then hands the
// stream to a transports.Pump, which writes only while something is queued.
//
// The hello event's id is the request's own positions (empty when it had
// none); each `subscribed` and `message` event's id is the cursor after it.
// So a browser's last event id always names exactly what it has seen: one
// cut between hello and a `subscribed` frame resumes as before rather than
// skipping a `recovered: false` it never received.
//
// On HTTP/1.x the connection is hijacked: an idle stream then holds no
// net/http buffers and no handler goroutine, only a goroutine blocked in a
// read that notices when the client leaves. Where hijacking is not possible
// (HTTP/2, a wrapping writer) the handler's goroutine waits while the pump
// writes through the ResponseWriter.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, s *session.Session, cur session.Cursor) {
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache, no-transform")
	hd.Set("X-Accel-Buffering", "no")
	st := &eventStream{h: h, s: s, cur: cur, header: hd}

	if r.ProtoMajor == 1 {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			h.serveConn(st, conn, r)
			return
		}
		if !errors.Is(err, http.ErrNotSupported) {
			h.end(s, session.DisconnectInternal, fmt.Errorf("hijack: %w", err))
			return
		}
	}
	if r.ProtoMajor == 1 { // a connection-specific header is not allowed on HTTP/2
		hd.Set("Connection", "keep-alive")
	}
	w.WriteHeader(http.StatusOK)
	st.out = &writerOut{w: w, rc: http.NewResponseController(w), timeout: h.cfg.WriteTimeout}
	st.done = make(chan struct{})
	if err := st.out.write(st.first(nil)); err != nil {
		h.end(s, session.DisconnectWriteTimeout, err)
		return
	}
	h.cfg.Writers.StartPump(h.cfg.Context, s, st, h.cfg.Node.Ping(), h.log)
	select {
	case <-st.done:
	case <-r.Context().Done():
		s.Fail(clientGone)
		<-st.done
	}
}

// serveConn streams on a hijacked HTTP/1.x connection: the response head
// goes out with the first event, the body is chunked (HTTP/1.1) or ends
// with the connection (HTTP/1.0), and the handler's goroutine returns.
func (h *Handler) serveConn(st *eventStream, conn net.Conn, r *http.Request) {
	// Deadlines net/http set for the request would cut the stream.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		h.end(st.s, connectionLost, err)
		return
	}
	tc := h.cfg.Writers.Conn(conn)
	out := &connOut{conn: tc, chunked: r.ProtoAtLeast(1, 1), timeout: h.cfg.WriteTimeout}
	st.out = out
	body := netconn.BodyUntilClose
	if out.chunked {
		body = netconn.BodyChunked
	}
	head := netconn.AppendResponseHead(make([]byte, 0, 1024), st.header, body)
	if err := out.write(st.first(head)); err != nil {
		conn.Close()
		h.end(st.s, session.DisconnectWriteTimeout, err)
		return
	}
	go st.watch(conn)
	h.cfg.Writers.StartPump(h.cfg.Context, st.s, tryStream{st, tc}, h.cfg.Node.Ping(), h.log)
}

// tryStream is the pump's sink for a stream on a hijacked connection: its
// batches are written without blocking, on the shared writers.
type tryStream struct {
	*eventStream
	conn *netconn.Conn
}

var _ transports.TrySink = tryStream{}

// TryWriteBatch writes the batch as WriteBatch does, without blocking: what
// the socket does not take at once waits in the netconn.Conn for Flush.
func (t tryStream) TryWriteBatch(items []session.Item) (bool, error) {
	return t.try(t.events(items))
}

// TryHeartbeat writes Heartbeat's ping event without blocking.
func (t tryStream) TryHeartbeat(idle, _ bool) (bool, error) {
	if !idle {
		return true, nil
	}
	return t.try(t.ping())
}

// try writes b, begun by events or ping, without blocking.
func (t tryStream) try(b []byte) (bool, error) {
	flushed, err := t.conn.TryWrite(t.out.(*connOut).frame(b))
	t.keep(b)
	return flushed, err
}

// Flush writes what TryWriteBatch or TryHeartbeat kept.
func (t tryStream) Flush() error {
	return t.conn.Flush(time.Now().Add(t.out.(*connOut).timeout))
}

// eventStream is one SSE response, the Sink of its pump.
type eventStream struct {
	h      *Handler
	s      *session.Session
	cur    session.Cursor
	header http.Header
	out    output
	buf    []byte
	done   chan struct{} // closed by End, for a handler that waits
}

// first is the opening of the body, after prefix: the retry interval and the
// hello event.
func (st *eventStream) first(prefix []byte) []byte {
	b := st.out.begin(prefix)
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, RetryInterval.Milliseconds(), 10)
	b = append(b, "\n\n"...)
	return appendEvent(b, st.s.Hello(), st.cur.Encode(), true)
}

// watch reads the hijacked connection until it fails: a client of an event
// stream sends nothing, so the only news is that it has gone. It holds the
// connection's one parked goroutine, with a shallow stack.
func (st *eventStream) watch(conn net.Conn) {
	var b [64]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			if netconn.IsStalled(err) { // the kernel dropped it: the stall bound
				st.s.Fail(session.DisconnectWriteTimeout)
			} else {
				st.s.Fail(clientGone)
			}
			return
		}
	}
}

// WriteBatch writes the frames as events, each `subscribed` and `message`
// event with the cursor after it as its id.
func (st *eventStream) WriteBatch(items []session.Item) error {
	return st.send(st.events(items))
}

// events starts a write and appends the batch's events.
func (st *eventStream) events(items []session.Item) []byte {
	b := st.out.begin(st.buf[:0])
	for _, it := range items {
		if st.cur.Advance(it) {
			b = appendEvent(b, it.Frame, st.cur.Encode(), true)
		} else {
			b = appendEvent(b, it.Frame, "", false)
		}
	}
	return b
}

// Heartbeat sends a ping event to a client that has seen nothing for a ping
// interval: an event, not a comment, since comments never reach EventSource
// listeners and the client watches for silence. SSE has no probe.
func (st *eventStream) Heartbeat(idle, _ bool) error {
	if !idle {
		return nil
	}
	return st.send(st.ping())
}

// ping starts a write and appends the ping event.
func (st *eventStream) ping() []byte {
	return appendEvent(st.out.begin(st.buf[:0]), session.PingFrame, "", false)
}

func (st *eventStream) send(b []byte) error {
	err := st.out.write(b)
	st.keep(b)
	return err
}

// keep keeps a write's buffer for the next one, unless it is large.
func (st *eventStream) keep(b []byte) {
	if cap(b) <= maxKeptBuffer {
		st.buf = b[:0]
	} else {
		st.buf = nil
	}
}

// End tells the client why the stream ends, unless it left or a write
// failed, then closes the connection and the session.
//
// A stream the server gives up on (a write failed, or the client did not keep
// up: transports.GaveUp) is aborted unless the disconnect event went into
// the socket at once: what the client has not taken would otherwise keep
// the socket, and its buffers, in FIN-WAIT-1 for as long as the client's
// zero window lasts.
func (st *eventStream) End(d session.Disconnect, writeErr error) {
	abort := writeErr != nil
	if writeErr == nil && d != clientGone {
		frame := appendEvent(st.out.begin(nil), session.DisconnectFrame(d), "", false)
		if transports.GaveUp(d) {
			abort = !st.out.tryWrite(frame)
		} else if st.out.write(frame) != nil {
			abort = true
		}
	}
	if abort {
		st.out.abort()
	} else {
		st.out.close()
	}
	if writeErr != nil {
		st.s.Fail(session.DisconnectWriteTimeout) // unless it had already failed
		d = st.s.Reason()
	}
	st.h.end(st.s, d, writeErr)
	if st.done != nil {
		close(st.done)
	}
}

// output is where a stream's bytes go: a hijacked connection or a
// ResponseWriter.
type output interface {
	// begin starts a write's buffer after prefix, leaving room for framing.
	begin(prefix []byte) []byte
	// write sends what begin started, in one write, under a write deadline.
	write(b []byte) error
	// close ends the response.
	close()
	// tryWrite writes what begin started if it can without waiting, and
	// reports whether it did.
	tryWrite(b []byte) bool
	// abort drops the connection with a reset (netconn.Abort), or ends
	// the response where there is no connection of its own.
	abort()
}

// connOut writes to a hijacked connection.
type connOut struct {
	conn    net.Conn
	chunked bool
	timeout time.Duration
	start   int // where the current chunk's room begins
}

func (o *connOut) begin(prefix []byte) []byte {
	o.start = len(prefix)
	if !o.chunked {
		return prefix
	}
	return append(prefix, make([]byte, netconn.ChunkRoom)...)
}

func (o *connOut) write(b []byte) error {
	if err := o.conn.SetWriteDeadline(time.Now().Add(o.timeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := o.conn.Write(o.frame(b)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// frame turns what begin started into the bytes to send: on a chunked body,
// one chunk (after the prefix).
func (o *connOut) frame(b []byte) []byte {
	if !o.chunked {
		return b
	}
	return netconn.FrameChunk(b, o.start)
}

func (o *connOut) tryWrite(b []byte) bool {
	if tc, ok := o.conn.(*netconn.Conn); ok {
		flushed, err := tc.TryWrite(o.frame(b))
		return flushed && err == nil
	}
	return false
}

func (o *connOut) abort() { _ = netconn.Abort(o.conn) }

func (o *connOut) close() {
	if o.chunked {
		_ = o.conn.SetWriteDeadline(time.Now().Add(o.timeout))
		_, _ = o.conn.Write([]byte(netconn.LastChunk)) // the body's end, for a proxy that reuses connections
	}
	o.conn.Close()
}

// writerOut writes through net/http, which frames and flushes.
type writerOut struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (o *writerOut) begin(prefix []byte) []byte { return prefix }

// write sends p in one write and flushes it, under a write deadline that is
// cleared afterwards: on HTTP/2 a deadline that expires while the stream is
// idle resets the stream.
func (o *writerOut) write(p []byte) error {
	if err := o.rc.SetWriteDeadline(time.Now().Add(o.timeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := o.w.Write(p); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := o.rc.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if err := o.rc.SetWriteDeadline(time.Time{}); err != nil {
		return fmt.Errorf("clear write deadline: %w", err)
	}
	return nil
}

func (o *writerOut) close() {}

// tryWrite cannot write without waiting through a ResponseWriter: the
// frame gets the write timeout, as any other write.
func (o *writerOut) tryWrite(b []byte) bool { return o.write(b) == nil }

// abort ends the response; the HTTP server owns the connection.
func (o *writerOut) abort() {}

// appendEvent appends one unnamed SSE event. Frames are compact JSON, so one
// `data:` line carries them. The id line comes after the data line: the SSE
// format does not care, but a client that dispatches a cut-off event (r3labs'
// does at EOF) then never records the id of a message it did not fully get.
func appendEvent(buf, frame []byte, id string, withID bool) []byte {
	buf = append(buf, "data: "...)
	buf = append(buf, frame...)
	buf = append(buf, '\n')
	if withID {
		buf = append(buf, "id: "...)
		buf = append(buf, id...)
		buf = append(buf, '\n')
	}
	return append(buf, '\n')
}

func (h *Handler) end(s *session.Session, d session.Disconnect, err error) {
	s.Close(d)
	if err != nil {
		h.cfg.Logger.Debug("sse write failed", "session", s.ID(), "transport", Transport, "err", err)
		return
	}
	h.cfg.Logger.Debug("sse stream ended", "session", s.ID(), "transport", Transport, "code", d.Code, "reason", d.Reason)
}
