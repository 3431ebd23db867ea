package poll

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// Transport names, as sent in the hello frame.
const (
	TransportPoll  = "poll"
	TransportJSONP = "jsonp"
)

// Defaults for Options.
const (
	// DefaultTimeout stays under the 30 s idle timeout common in proxies and
	// load balancers.
	DefaultTimeout = 25 * time.Second
	// DefaultLinger lets a burst that is still arriving go out in one answer,
	// rather than one poll round trip per message.
	DefaultLinger = 10 * time.Millisecond
	// DefaultDetach keeps a poll on net/http while messages arrive about
	// once a second or more often.
	DefaultDetach = time.Second
)

// formOverhead is what a POST form may hold beyond the channel names: the
// cursor, a token and the parameter names.
const formOverhead = session.MaxCursorLen + 16<<10

// Options tune the long-poll handler.
type Options struct {
	// Timeout is how long a poll with a cursor is held when nothing arrives.
	// Default DefaultTimeout.
	Timeout time.Duration
	// Linger is how long an answer waits for more messages once the first
	// has arrived. Default DefaultLinger; negative for none.
	Linger time.Duration
	// Detach sets when a held poll leaves net/http to wait on its bare
	// connection (about 9 KB instead of 30, but a connection hand-over on
	// every answer): at once when its channels had no publication for
	// Detach; otherwise after waiting up to Detach on its HTTP request,
	// where a busy channel's next message likely answers it. Default
	// DefaultDetach; negative for never.
	Detach time.Duration
}

// endOfPoll is recorded when a poll answered normally. The session's table
// has no code for a session that simply ends; 0 keeps it apart from failures.
var endOfPoll = session.Disconnect{Reason: "answered"}

// Handler serves GET and POST /connect/poll.
type Handler struct {
	cfg  transports.Config
	opts Options
}

var _ http.Handler = (*Handler)(nil)

// New returns the long-poll handler.
func New(cfg transports.Config, opts Options) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	var err error
	if opts.Timeout, err = transports.DurationOption("timeout", opts.Timeout, DefaultTimeout); err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	if opts.Linger == 0 {
		opts.Linger = DefaultLinger
	}
	if opts.Detach == 0 {
		opts.Detach = DefaultDetach
	}
	return &Handler{cfg: cfg, opts: opts}, nil
}

// MaxFormBytes is the largest POST poll body taken under limits: every
// channel a session may hold, URL-escaped, and a cursor for them all.
func MaxFormBytes(limits session.Limits) int64 {
	return int64(limits.MaxChannels*(3*session.MaxChannelLen+len("&channel=")) + formOverhead)
}

// ServeHTTP answers one poll. POST carries the same parameters as a form
// body, for channel lists too long for a URL.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	node := h.cfg.Node
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes(node.Limits()))
	case http.MethodOptions:
		transports.Preflight(w, r, h.cfg.CheckOrigin, "GET, POST, OPTIONS")
		return
	default:
		transports.MethodNotAllowed(w, "GET, POST, OPTIONS")
		return
	}
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			transports.WriteError(w, &session.Error{Code: http.StatusRequestEntityTooLarge, Reason: "form too large"})
			return
		}
		transports.WriteError(w, &session.Error{Code: http.StatusBadRequest, Reason: "malformed query or form"})
		return
	}
	a := answer{w: w, writeTimeout: h.cfg.WriteTimeout}
	transport := TransportPoll
	if cb, ok := r.Form["callback"]; ok {
		if len(cb) != 1 || !validCallback(cb[0]) {
			// No callback to call: a plain error, which a script tag sees as a failed load.
			transports.WriteError(w, &session.Error{Code: http.StatusBadRequest, Reason: "invalid callback"})
			return
		}
		a.callback, transport = cb[0], TransportJSONP
	}
	if a.callback != "" && !h.jsonpOriginAllowed(r) ||
		a.callback == "" && !transports.AllowOrigin(w, r, h.cfg.CheckOrigin) {
		a.fail(transports.ErrOriginForbidden)
		return
	}
	req, err := transports.ParseStreamRequest(r.Form, "", node.Limits().MaxChannels)
	if err != nil {
		a.fail(err)
		return
	}
	authReq := r
	if tok := r.PostForm.Get("token"); tok != "" {
		authReq = transports.WithToken(r, tok)
	}
	s, refused := h.cfg.Open(r.Context(), transports.Opening{
		Transport: transport,
		Auth:      authReq,
		Prepare:   pollPresence(r.Form["client"], req.HasCursor),
		Stream:    &req,
		// Quiet: a resume that recovers has nothing to announce on every
		// poll; one that cannot still says recovered:false.
		Quiet: req.HasCursor,
	})
	if refused != nil {
		a.fail(refused.Status)
		return
	}
	ctx := r.Context()

	wait := time.Duration(0)
	if req.HasCursor {
		wait = h.opts.Timeout
	}
	ps := h.startSink(s, a, req.Positions, !req.HasCursor, req.HasCursor && h.opts.Linger >= 0)
	if wait == 0 {
		ps.poke() // answer with what is queued (the subscribed frames)
	}
	// A poll to hold leaves net/http (hold) to wait at a fraction of the
	// memory. But leaving and coming back costs CPU on every answer, so a
	// poll on a busy channel (a publication within Options.Detach) first
	// waits up to Detach on its HTTP goroutine, where the next message
	// likely finds it.
	if detach := h.opts.Detach; req.HasCursor && detach >= 0 && detach < wait {
		if time.Since(s.LastPublished()) >= detach {
			detach = 0
		}
		wait -= detach
		if detach > 0 && !ps.await(ctx, detach) {
			return // answered, or the client went away
		}
		if ps.hold(w, r, wait) {
			return // answered later, on the hijacked connection
		}
	}
	if wait > 0 {
		t := time.AfterFunc(wait, ps.poke)
		defer t.Stop()
	}
	ps.await(ctx, -1)
}

// pollPresence is how a poll's session enters presence. One session per
// poll: presence lists the client under the id its first poll's hello
// gave it, sent back as "client" on later polls, and keeps the entry
// between polls by a lease (session.PollPresence). A first poll (no
// cursor) is a new client under its own session id. A later poll without a
// usable id (missing, repeated or malformed: a client that predates
// "client", or a bad one) is left out of presence, as every poll was
// before: listed, each of its polls would be a join.
func pollPresence(client []string, hasCursor bool) func(*session.Session) {
	switch {
	case len(client) == 1 && session.ValidPollClient(client[0]):
		return func(s *session.Session) { s.PollPresence(client[0]) }
	case !hasCursor:
		return func(s *session.Session) { s.PollPresence("") }
	default:
		return (*session.Session).SkipPresence
	}
}

// finish closes the session and answers with what the sink collected: the
// hello first on a poll without a cursor, the disconnect last when the
// session failed, and the cursor after the last frame sent.
func (h *Handler) finish(a *answer, s *session.Session, hello bool, items []session.Item, end *session.Disconnect, cur session.Cursor) error {
	items = capBatch(items, h.cfg.Node.Limits().MaxQueueBytes)
	for _, it := range items {
		cur.Advance(it)
	}
	var first, bye []byte
	if hello {
		first = s.Hello()
	}
	if end != nil {
		bye = session.DisconnectFrame(*end)
		s.Close(*end)
	} else {
		s.Close(endOfPoll)
	}
	err := a.messages(first, items, bye, cur.Encode())
	if err != nil {
		h.cfg.Logger.Debug("poll answer failed", "session", s.ID(), "transport", s.Transport(), "err", err)
	}
	return err
}

// capBatch bounds one answer to about limit bytes (and always keeps the first
// frame). A resume far back would otherwise answer the whole history at once.
// What is left out is not lost: the cursor covers only what is sent, so the
// next poll continues from there.
func capBatch(items []session.Item, limit int) []session.Item {
	size := 0
	for i := range items {
		size += len(items[i].Frame)
		if size > limit && i > 0 {
			return items[:i]
		}
	}
	return items
}

// answer writes a poll's response, as JSON or as a JSONP script: through
// the ResponseWriter, or on the hijacked connection of a held poll.
type answer struct {
	w            http.ResponseWriter
	callback     string // "" for JSON
	writeTimeout time.Duration
	// Set for a held poll: its connection, the response's header (the
	// ResponseWriter is not kept), and whether the connection may serve
	// another request afterwards.
	conn   net.Conn
	header http.Header
	keep   bool
}

// fail answers err. JSON gets its status; JSONP gets 200 and a call of the
// callback with {"error":{...}}, because a script tag cannot read a status
// (old browsers do not even fire onerror) and a failed load says nothing.
func (a *answer) fail(err error) {
	if a.callback == "" {
		transports.WriteError(a.w, err)
		return
	}
	body := transports.ErrorBody(err)
	_ = a.write(wrapJSONP(make([]byte, 0, len(body)+len(a.callback)+8), a.callback, body)) // nothing left to do on failure
}

// messages answers {"messages":[hello?, items..., bye?],"cursor":"…"}. The
// frames are JSON already: they are copied, not re-encoded.
func (a *answer) messages(hello []byte, items []session.Item, bye []byte, cursor string) error {
	n := len(hello) + len(bye) + len(cursor) + len(items) + len(a.callback) + 48
	for i := range items {
		n += len(items[i].Frame)
	}
	body := make([]byte, 0, n)
	body = append(body, `{"messages":[`...)
	sep := false
	add := func(f []byte) {
		if f == nil {
			return
		}
		if sep {
			body = append(body, ',')
		}
		body, sep = append(body, f...), true
	}
	add(hello)
	for i := range items {
		add(items[i].Frame)
	}
	add(bye)
	body = append(body, `],"cursor":"`...)
	body = append(body, cursor...) // base64url: nothing to escape
	body = append(body, `"}`...)
	if a.callback != "" {
		body = wrapJSONP(make([]byte, 0, len(body)+len(a.callback)+8), a.callback, body)
	}
	return a.write(body)
}

// write sends a 200 answer under a fresh write deadline: the server's own
// deadline, set when the request arrived, may have passed while it was held.
func (a *answer) write(body []byte) error {
	if a.conn != nil {
		return a.writeConn(body)
	}
	a.setHeaders(a.w.Header(), len(body))
	rc := http.NewResponseController(a.w)
	if err := rc.SetWriteDeadline(time.Now().Add(a.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("set write deadline: %w", err)
	}
	a.w.WriteHeader(http.StatusOK)
	if _, err := a.w.Write(body); err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	return nil
}

// writeConn writes the whole response, head and body, in one write on the
// hijacked connection.
func (a *answer) writeConn(body []byte) error {
	a.setHeaders(a.header, len(body))
	a.header.Set("Date", time.Now().UTC().Format(http.TimeFormat)) // net/http adds it on its own path
	if !a.keep {
		a.header.Set("Connection", "close")
	}
	head := netconn.AppendResponseHead(make([]byte, 0, 512+len(body)), a.header, netconn.BodySized)
	head = append(head, body...)
	if err := a.conn.SetWriteDeadline(time.Now().Add(a.writeTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := a.conn.Write(head); err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	return a.conn.SetWriteDeadline(time.Time{})
}

func (a *answer) setHeaders(h http.Header, size int) {
	if a.callback != "" {
		h.Set("Content-Type", "application/javascript; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(size))
}
