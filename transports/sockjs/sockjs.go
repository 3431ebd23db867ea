package sockjs

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	sockjs "github.com/igm/sockjs-go/v3/sockjs"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// Transport is the name of this transport in hello frames and metrics.
const Transport = "sockjs"

// Defaults of Options.
const (
	DefaultPrefix    = "/connect/sockjs"
	DefaultSockJSURL = "/client/sockjs.min.js"
)

// Options tunes the SockJS endpoint beyond transports.Config.
type Options struct {
	// Prefix is the path the handler is mounted at, without a trailing
	// slash. sockjs-go strips it from the full request path, so it must be
	// the whole mounted path. Default DefaultPrefix.
	Prefix string
	// SockJSURL is the script the iframe page (used by the iframe-based
	// transports) loads. That page runs with this server's origin, so the
	// script must be one this server serves: sockjs-go's default is a CDN.
	// Default DefaultSockJSURL.
	SockJSURL string
	// StickyCookie makes every SockJS response set a JSESSIONID cookie and
	// /info answer cookie_needed: true, for load balancers that pin clients
	// by that cookie. SockJS keeps a session on one node across the HTTP
	// requests of its polling and streaming transports, so behind a load
	// balancer it needs sticky sessions, by this cookie or by client
	// address. The cookie is never read for authentication.
	StickyCookie bool
	// DisconnectDelay is how long a session of an HTTP transport waits for
	// the client's next request before it ends. Default 5 s (sockjs-go's).
	DisconnectDelay time.Duration
}

// readBufferSize is the read buffer of the WebSocket transport, whose
// reads are small commands. Non-zero: gorilla then reads through the
// hijacked connection's wrapper (see limitConn).
const readBufferSize = 1024

// Handler serves the SockJS endpoint: /info, the iframe page and every
// SockJS transport, each session bridged into one session.Session.
type Handler struct {
	cfg    transports.Config
	node   *session.Node
	log    *slog.Logger
	prefix string
	sj     *sockjs.Handler
	links  links
	// frameLimit bounds one incoming WebSocket message and one xhr_send
	// body; jsonp_send bodies, form-encoded, get three times as much.
	frameLimit int64
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler for cfg.
func New(cfg transports.Config, opts Options) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sockjs: %w", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	opts.Prefix = strings.TrimSuffix(opts.Prefix, "/")
	if !strings.HasPrefix(opts.Prefix, "/") {
		return nil, fmt.Errorf("sockjs: prefix %q does not start with /", opts.Prefix)
	}
	if opts.SockJSURL == "" {
		opts.SockJSURL = DefaultSockJSURL
	}
	h := &Handler{
		cfg:        cfg,
		node:       cfg.Node,
		log:        cfg.Logger.With("transport", Transport),
		prefix:     opts.Prefix,
		links:      links{m: make(map[string]*link)},
		frameLimit: frameLimit(cfg.Node.Limits().MaxMessageBytes),
	}
	// A copy: DefaultOptions holds a shared Upgrader, and a zero Options
	// has no heartbeats and a ResponseLimit that ends every stream at once.
	so := sockjs.DefaultOptions
	so.SockJSURL = opts.SockJSURL
	so.JSessionID = nil
	if opts.StickyCookie {
		so.JSessionID = sockjs.DefaultJSessionID
	}
	var err error
	if so.DisconnectDelay, err = transports.DurationOption("disconnect delay", opts.DisconnectDelay, so.DisconnectDelay); err != nil {
		return nil, fmt.Errorf("sockjs: %w", err)
	}
	// ServeHTTP refuses other origins before sockjs-go sees them; this only
	// keeps its CORS headers off requests the check would not pass.
	so.CheckOrigin = cfg.CheckOrigin
	so.WebsocketWriteTimeout = cfg.WriteTimeout
	so.WebsocketUpgrader = cfg.Upgrader(readBufferSize)
	h.sj = sockjs.NewHandler(opts.Prefix, so, h.serveSession)
	return h, nil
}

// frameLimit is the largest SockJS message body accepted for a command of at
// most maxMessage bytes: the client quotes the command as a JSON string, and
// sockjs-client's quoting turns some 2-byte characters (and each half of a
// surrogate pair) into 6-byte \u escapes, so 3× plus room for the array.
func frameLimit(maxMessage int) int64 { return 3*int64(maxMessage) + 1024 }

// The requests ServeHTTP looks at before sockjs-go: those that carry a
// session's traffic.
type endpoint int

const (
	endpointOther     endpoint = iota
	endpointWebsocket          // GET …/websocket
	endpointReceive            // a request the session's frames are written to
	endpointSend               // POST …/xhr_send or …/jsonp_send
)

// sessionPath matches what sockjs-go routes as /<server>/<session>/<transport>.
var sessionPath = regexp.MustCompile(`^/[^/.]+/([^/.]+)/([a-z_]+)$`)

// classify returns the endpoint of r, the SockJS session id it names and its
// transport part (xhr, jsonp_send…).
func (h *Handler) classify(r *http.Request) (kind endpoint, id, name string) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		return endpointOther, "", ""
	}
	m := sessionPath.FindStringSubmatch(rest)
	if m == nil {
		return endpointOther, "", ""
	}
	id, name = m[1], m[2]
	switch {
	case r.Method == http.MethodGet && name == "websocket":
		return endpointWebsocket, id, name
	case r.Method == http.MethodPost && (name == "xhr" || name == "xhr_streaming"),
		r.Method == http.MethodGet && (name == "eventsource" || name == "htmlfile" || name == "jsonp"):
		return endpointReceive, id, name
	case r.Method == http.MethodPost && (name == "xhr_send" || name == "jsonp_send"):
		return endpointSend, id, name
	}
	return endpointOther, "", ""
}

// ServeHTTP checks the origin, bounds what the request may send and how long
// each write to it may take, then hands it to sockjs-go.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	// sockjs-go echoes any Origin with credentials allowed, and JSONP and
	// htmlfile cannot be origin-checked by the browser at all: every request
	// that names an origin passes the allow-list first.
	if r.Header.Get("Origin") != "" && !h.cfg.CheckOrigin(r) {
		transports.WriteError(w, transports.ErrOriginForbidden)
		return
	}
	kind, id, name := h.classify(r)
	rw := &responseWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: h.cfg.WriteTimeout, h2: r.ProtoMajor >= 2}
	switch kind {
	case endpointWebsocket:
		// A fresh link, not the shared one of the id: a WebSocket session is
		// its own request, and sockjs-go does not register it under its id.
		l := newLink()
		l.websocket = true
		l.notText = rand.Text()
		rw.wrapConn = func(c net.Conn) net.Conn {
			return newLimitConn(c, h.frameLimit, 2*h.cfg.WriteTimeout+time.Second, func() {
				l.fail(session.DisconnectMessageTooLarge)
			}, notTextFrame(l.notText))
		}
		r = r.WithContext(context.WithValue(r.Context(), linkKey{}, l))
	case endpointReceive:
		// A stalled client must not pin the session's writer: refuse a
		// response writer that cannot take deadlines (a wrapping middleware
		// without Unwrap) rather than stream without them.
		if err := rw.rc.SetWriteDeadline(time.Time{}); err != nil {
			h.log.Error("sockjs: response writer without write deadlines", "err", err)
			transports.WriteError(w, &session.Error{Code: http.StatusInternalServerError, Reason: "streaming not supported here"})
			return
		}
		l := h.links.acquire(id)
		defer h.links.release(id, l)
		if !h.links.ownedBy(l, tokenDigest(r)) {
			h.refuseStranger(w, r)
			return
		}
		rw.onWrite = l.written
		// Streams write a prelude, and flush it, before sockjs-go attaches
		// them to the session: only what follows are frames.
		rw.prelude = name != "xhr" && name != "jsonp"
		if rw.prelude && !rw.h2 {
			// A stream given up on (a write timed out: net/http closes the
			// connection inside that write) is aborted, not closed behind
			// what the client never read; a stream that ends well is not.
			netconn.AbortOnClose(r, true)
			rw.onDone = func() { netconn.AbortOnClose(r, false) }
		}
	case endpointSend:
		if l := h.links.lookup(id); l != nil && !h.links.ownedBy(l, tokenDigest(r)) {
			h.refuseStranger(w, r)
			return
		}
		limit := h.frameLimit
		if name == "jsonp_send" {
			limit *= 3 // form encoding: %XX per byte at worst
		}
		if !h.readBody(w, r, id, limit) || !h.checkText(w, r, name) {
			return
		}
	}
	defer rw.finish(r.Context())
	if kind == endpointReceive && (name == "xhr" || name == "jsonp") {
		retryPoll(rw, r, h.sj)
		return
	}
	h.sj.ServeHTTP(rw, r)
}

// readBody reads a send request's body, at most limit bytes, so that sockjs-go
// decodes it from memory. An oversized body is answered 413 and ends the
// session with 3501, as an oversized WebSocket message does.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, id string, limit int64) bool {
	var body []byte
	var err error
	if r.ContentLength > limit {
		err = &http.MaxBytesError{Limit: limit}
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		if l := h.links.lookup(id); l != nil {
			l.fail(session.DisconnectMessageTooLarge)
		}
		h.allowCORS(w, r)
		transports.WriteError(w, &session.Error{Code: http.StatusRequestEntityTooLarge, Reason: session.DisconnectMessageTooLarge.Reason})
		return false
	case err != nil:
		h.allowCORS(w, r)
		transports.WriteError(w, &session.Error{Code: http.StatusBadRequest, Reason: "could not read the request body"})
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}

// checkText refuses a send whose messages are not valid UTF-8 text, or
// carry a \u escape of a lone surrogate, with 400 before sockjs-go decodes
// it: its JSON decoding turns both into U+FFFD, silently, so the commands
// inside would pass the check every command gets and two different invalid
// idempotency keys would become one (found 2026-12-07: over xhr_send, keys
// "k\ud800" and "k\ud801" published once, the second answered as a
// duplicate and never delivered; WebSocket refused both). The session stays
// open, as after any bad command. A jsonp_send form carries the messages in
// its d field, which is what sockjs-go decodes.
func (h *Handler) checkText(w http.ResponseWriter, r *http.Request, name string) bool {
	body, _ := io.ReadAll(r.Body) // from memory: readBody read it
	r.Body = io.NopCloser(bytes.NewReader(body))
	text := body
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if name == "jsonp_send" && strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return true // sockjs-go refuses it
		}
		text = []byte(form.Get("d"))
	}
	if session.ValidJSONText(text) {
		return true
	}
	h.allowCORS(w, r)
	transports.WriteError(w, &session.Error{Code: http.StatusBadRequest,
		Reason: "message is not valid UTF-8 (JSON text must be UTF-8, and \\u escapes must not be lone surrogates)"})
	return false
}

// refuseStranger answers a request naming a session that another token
// opened (found 2026-12-07: anyone who knew a session's id, from a proxy's
// access log for one, polled its private messages and sent commands as
// it, with no token and from anywhere).
func (h *Handler) refuseStranger(w http.ResponseWriter, r *http.Request) {
	h.allowCORS(w, r)
	transports.WriteError(w, &session.Error{Code: http.StatusForbidden,
		Reason: "this SockJS session was opened with another token"})
}

// allowCORS lets an allowed page read an answer written here rather than by
// sockjs-go, with the headers sockjs-go would have set.
func (h *Handler) allowCORS(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
	}
}
