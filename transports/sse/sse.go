package sse

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

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
// (and metrics label) as a WebSocket client that leaves.
var clientGone = session.ClosedByClient

var errNoStreaming = &session.Error{Code: http.StatusInternalServerError, Reason: "streaming not supported"}

// Handler serves GET /connect/sse.
type Handler struct {
	cfg transports.Config
}

var _ http.Handler = (*Handler)(nil)

// New returns the SSE handler.
func New(cfg transports.Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sse: %w", err)
	}
	return &Handler{cfg: cfg}, nil
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
	rc := http.NewResponseController(w)
	// The server's WriteTimeout would cut every stream; each write sets its
	// own deadline instead. A writer that cannot take deadlines (a wrapping
	// middleware) would let a stalled client pin this goroutine: refuse.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		h.cfg.Logger.Error("sse: response writer without deadlines", "transport", Transport, "err", err)
		transports.WriteError(w, errNoStreaming)
		return
	}
	s, err := node.NewSession(Transport)
	if err != nil { // shutting down
		transports.WriteError(w, &session.Error{Code: http.StatusServiceUnavailable, Reason: "shutting down"})
		return
	}
	if err := h.cfg.AuthenticateRequest(r, s); err != nil {
		e := transports.AuthError(err)
		s.Close(transports.RefusalDisconnect(e))
		transports.WriteError(w, e)
		return
	}
	for _, ch := range req.Channels {
		sr := session.SubscribeRequest{Channel: ch}
		if p, ok := req.Positions[ch]; ok {
			sr.Since = &p
		}
		err := s.Subscribe(r.Context(), sr)
		if errors.Is(err, session.ErrClosed) {
			break // the session failed (shutdown, queue overflow): the stream says so
		}
		if err != nil {
			e := session.AsError(err)
			s.Close(transports.RefusalDisconnect(e))
			transports.WriteError(w, e)
			return
		}
	}
	h.stream(w, r, rc, s, req.Positions)
}

// stream writes the stream until it ends, then closes the session.
//
// The hello event's id is the request's own positions (empty when it had
// none); each `subscribed` and `message` event's id is the cursor after it.
// So a browser's last event id always names exactly what it has seen: one
// cut between hello and a `subscribed` frame resumes as before rather than
// skipping a `recovered: false` it never received.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, s *session.Session, cur session.Cursor) {
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache, no-transform")
	hd.Set("X-Accel-Buffering", "no")
	if r.ProtoMajor == 1 { // a connection-specific header is not allowed on HTTP/2
		hd.Set("Connection", "keep-alive")
	}
	w.WriteHeader(http.StatusOK)

	buf := make([]byte, 0, 1024)
	buf = append(buf, "retry: "...)
	buf = strconv.AppendInt(buf, RetryInterval.Milliseconds(), 10)
	buf = append(buf, "\n\n"...)
	buf = appendEvent(buf, s.Hello(), cur.Encode(), true)
	if err := h.write(w, rc, buf); err != nil {
		h.end(s, session.DisconnectWriteTimeout, err)
		return
	}

	ctx, ping := r.Context(), h.cfg.Node.Ping()
	var items []session.Item
	for {
		var err error
		items, err = s.Next(ctx, ping, items)
		if err != nil {
			var d session.Disconnect
			if !errors.As(err, &d) {
				h.end(s, clientGone, nil)
				return
			}
			// The client learns why before the stream ends; a failed write
			// changes nothing now.
			_ = h.write(w, rc, appendEvent(buf[:0], session.DisconnectFrame(d), "", false))
			h.end(s, d, nil)
			return
		}
		buf = buf[:0]
		if len(items) == 0 {
			// An event, not a comment: comments never reach EventSource
			// listeners, and the client watches for silence.
			buf = appendEvent(buf, session.PingFrame, "", false)
		}
		for _, it := range items {
			if cur.Advance(it) {
				buf = appendEvent(buf, it.Frame, cur.Encode(), true)
			} else {
				buf = appendEvent(buf, it.Frame, "", false)
			}
		}
		if err := h.write(w, rc, buf); err != nil {
			h.end(s, session.DisconnectWriteTimeout, err)
			return
		}
		if cap(buf) > maxKeptBuffer {
			buf = nil
		}
	}
}

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

// write sends p in one write and flushes it, under a write deadline that is
// cleared afterwards: on HTTP/2 a deadline that expires while the stream is
// idle resets the stream.
func (h *Handler) write(w http.ResponseWriter, rc *http.ResponseController, p []byte) error {
	if err := rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := w.Write(p); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		return fmt.Errorf("clear write deadline: %w", err)
	}
	return nil
}

func (h *Handler) end(s *session.Session, d session.Disconnect, err error) {
	s.Close(d)
	if err != nil {
		h.cfg.Logger.Debug("sse write failed", "session", s.ID(), "transport", Transport, "err", err)
		return
	}
	h.cfg.Logger.Debug("sse stream ended", "session", s.ID(), "transport", Transport, "code", d.Code, "reason", d.Reason)
}
