package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/server/auth"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
	"github.com/waterspout/waterspout/transports/poll"
)

// RateLimits bound what one client address, one backend credential and one
// session may ask for. In each field zero means the default and NoLimit
// turns the limit off. Addresses are those of the echo IPExtractor (see
// Config.TrustedProxies), IPv6 grouped by /64.
type RateLimits struct {
	// ConnectionsPerIP bounds the open connections of one address on
	// /connect/*: WebSockets, SSE streams, held polls, SockJS requests.
	ConnectionsPerIP int `json:"connectionsPerIP"`
	// ConnectsPerSecond and ConnectBurst bound the requests one address
	// makes to /connect/* (CORS preflights do not count, continuing polls
	// count toward PollsPerSecond instead).
	ConnectsPerSecond int `json:"connectsPerSecond"`
	ConnectBurst      int `json:"connectBurst"`
	// PollsPerSecond and PollBurst bound the continuing long-polls one
	// address makes: a GET /connect/poll whose query cursor is well formed
	// and names one of the poll's channels. A long-poll client makes a
	// request per answer, so behind one NAT these come far faster than new
	// connections; charging them to ConnectsPerSecond refused real crowds.
	// A cursor proves nothing (anyone can write one), so this is a budget
	// of its own, not a pass: it bounds what one address can cost in polls.
	PollsPerSecond int `json:"pollsPerSecond"`
	PollBurst      int `json:"pollBurst"`
	// PublishesPerSecond and PublishBurst bound the publications one API key
	// (or one publisher token subject) makes through /api/*; a broadcast
	// counts one per channel. An open API (no credentials configured,
	// loopback only) is not limited.
	//
	// The default is no limit: a credential on /api/* is one the operator
	// issued to its own backend, which must not be refused at the rate its
	// traffic happens to reach (2,000/s got 429s at the old default of
	// 1,000). A rate makes it a quota, for publisher tokens handed to
	// parties that are trusted less; the burst applies once a rate is set.
	PublishesPerSecond int `json:"publishesPerSecond"`
	PublishBurst       int `json:"publishBurst"`
	// APICallsPerSecond and APICallBurst bound the other /api/* requests
	// of one API key or publisher token subject: history, presence,
	// presence stats, channels, disconnect and unsubscribe. Each of these
	// reads or writes the broker (a presence list is up to
	// presence.maxClients entries; a control order goes to every node), so
	// a credential given to a less trusted party is a cost without them.
	// Off by default, as PublishesPerSecond and for the same reason.
	APICallsPerSecond int `json:"apiCallsPerSecond"`
	APICallBurst      int `json:"apiCallBurst"`
	// CommandsPerSecond and CommandBurst bound the commands one WebSocket or
	// SockJS session sends (see session.CommandRate).
	CommandsPerSecond int `json:"commandsPerSecond"`
	CommandBurst      int `json:"commandBurst"`
}

// NoLimit, as a RateLimits field, turns that limit off.
const NoLimit = -1

// Defaults of RateLimits. They are per address, so they are generous enough
// for a busy office behind one NAT; a reverse proxy must be listed in
// TrustedProxies, or every client counts as the proxy's address.
const (
	DefaultConnectionsPerIP   = 1000
	DefaultConnectsPerSecond  = 100
	DefaultConnectBurst       = 500
	DefaultPublishesPerSecond = NoLimit // see RateLimits.PublishesPerSecond
	DefaultPublishBurst       = 5000
	DefaultAPICallsPerSecond  = NoLimit // see RateLimits.APICallsPerSecond
	DefaultAPICallBurst       = 1000
	DefaultCommandsPerSecond  = 100
	DefaultCommandBurst       = 200
)

// Defaults of RateLimits.PollsPerSecond and PollBurst: 1,000 users behind
// one address on a channel with 5 messages a second poll about 5,000 times
// a second; twice that leaves room for bursts of messages (each answers a
// poll) and for held polls timing out.
const (
	DefaultPollsPerSecond = 10000
	DefaultPollBurst      = 20000
)

// maxLimiterKeys bounds the buckets a rate limiter holds (see
// auth.KeyedLimiter): about 100 bytes each.
const maxLimiterKeys = 100_000

// defaultRateLimits holds every default.
func defaultRateLimits() RateLimits {
	return RateLimits{
		ConnectionsPerIP:   DefaultConnectionsPerIP,
		ConnectsPerSecond:  DefaultConnectsPerSecond,
		ConnectBurst:       DefaultConnectBurst,
		PollsPerSecond:     DefaultPollsPerSecond,
		PollBurst:          DefaultPollBurst,
		PublishesPerSecond: DefaultPublishesPerSecond,
		PublishBurst:       DefaultPublishBurst,
		APICallsPerSecond:  DefaultAPICallsPerSecond,
		APICallBurst:       DefaultAPICallBurst,
		CommandsPerSecond:  DefaultCommandsPerSecond,
		CommandBurst:       DefaultCommandBurst,
	}
}

// validate fills defaults for zero fields and checks the rest.
func (l *RateLimits) validate() error {
	d := defaultRateLimits()
	for _, f := range []struct {
		name       string
		v          *int
		def        int
		canTurnOff bool
	}{
		{"connectionsPerIP", &l.ConnectionsPerIP, d.ConnectionsPerIP, true},
		{"connectsPerSecond", &l.ConnectsPerSecond, d.ConnectsPerSecond, true},
		{"connectBurst", &l.ConnectBurst, d.ConnectBurst, false},
		{"pollsPerSecond", &l.PollsPerSecond, d.PollsPerSecond, true},
		{"pollBurst", &l.PollBurst, d.PollBurst, false},
		{"publishesPerSecond", &l.PublishesPerSecond, d.PublishesPerSecond, true},
		{"publishBurst", &l.PublishBurst, d.PublishBurst, false},
		{"apiCallsPerSecond", &l.APICallsPerSecond, d.APICallsPerSecond, true},
		{"apiCallBurst", &l.APICallBurst, d.APICallBurst, false},
		{"commandsPerSecond", &l.CommandsPerSecond, d.CommandsPerSecond, true},
		{"commandBurst", &l.CommandBurst, d.CommandBurst, false},
	} {
		switch {
		case *f.v == 0:
			*f.v = f.def
		case *f.v == NoLimit && f.canTurnOff:
		case *f.v < 0 && f.canTurnOff:
			return fmt.Errorf("rate limit %s is %d: want a positive number, or -1 for none", f.name, *f.v)
		case *f.v < 0:
			return fmt.Errorf("rate limit %s is %d: want a positive number", f.name, *f.v)
		}
	}
	return nil
}

// commandRate is the session's form of the command limit.
func (l RateLimits) commandRate() session.CommandRate {
	if l.CommandsPerSecond <= 0 {
		return session.CommandRate{}
	}
	return session.CommandRate{PerSecond: float64(l.CommandsPerSecond), Burst: l.CommandBurst}
}

// limiters are the server's rate limiters; a nil one allows everything.
type limiters struct {
	conns     *auth.ConnLimiter
	connects  *auth.KeyedLimiter
	polls     *auth.KeyedLimiter // continuing long-polls (see RateLimits.PollsPerSecond)
	publishes *auth.KeyedLimiter
	apiCalls  *auth.KeyedLimiter // /api/* requests besides publishing
}

// newLimiters builds the limiters of l; now is their clock (nil: time.Now).
func newLimiters(l RateLimits, now func() time.Time) *limiters {
	out := &limiters{}
	if l.ConnectionsPerIP > 0 {
		out.conns = auth.NewConnLimiter(l.ConnectionsPerIP)
	}
	if l.ConnectsPerSecond > 0 {
		out.connects = auth.NewKeyedLimiter(float64(l.ConnectsPerSecond), l.ConnectBurst, maxLimiterKeys, now)
	}
	if l.PollsPerSecond > 0 {
		out.polls = auth.NewKeyedLimiter(float64(l.PollsPerSecond), l.PollBurst, maxLimiterKeys, now)
	}
	if l.PublishesPerSecond > 0 {
		out.publishes = auth.NewKeyedLimiter(float64(l.PublishesPerSecond), l.PublishBurst, maxLimiterKeys, now)
	}
	if l.APICallsPerSecond > 0 {
		out.apiCalls = auth.NewKeyedLimiter(float64(l.APICallsPerSecond), l.APICallBurst, maxLimiterKeys, now)
	}
	return out
}

// The limit label values of waterspout_limited_total, beside session's
// (commands, channels, channel_name).
const (
	limitConnections = "connections_per_ip"
	limitConnects    = "connects_per_ip"
	limitPolls       = "polls_per_ip"
	limitPublishes   = "publishes_per_key"
	limitAPICalls    = "api_calls_per_key"
	limitMessageSize = "message_size"
	limitQueue       = "queue"
	limitAdminLogins = "admin_logins_per_ip"
	// limitCredFailures: API keys and publisher tokens on /api/* that
	// failed, per client address (see credFailBurst).
	limitCredFailures = "credential_failures_per_ip"
)

// limitNames lists every label value, so each series exists from the start.
var limitNames = []string{
	limitConnections, limitConnects, limitPolls, limitPublishes, limitAPICalls, limitMessageSize, limitQueue,
	limitAdminLogins, limitCredFailures,
	session.LimitCommands, session.LimitChannels, session.LimitChannelName,
	session.LimitServerChannels, session.LimitPresence,
}

// clientKey is the rate-limit key of a request's client: the address echo's
// IPExtractor finds (the same one c.RealIP gives the API routes), by
// auth.IPKey.
func (s *Server) clientKey(r *http.Request) string {
	ip := s.echo.IPExtractor(r)
	if a, err := netip.ParseAddr(ip); err == nil {
		return auth.IPKey(a)
	}
	return ip
}

// connectRoute says how a transport's own refusals map to limits.
type connectRoute int

const (
	// routeSession: WebSocket and SockJS, whose limits the session counts.
	routeSession connectRoute = iota
	// routeStream: SSE, which refuses too many or invalid channels before
	// a session exists.
	routeStream
	// routePoll: long-poll (and JSONP), refusing as routeStream does; a
	// continuing poll is charged to the poll rate, not the connect rate.
	routePoll
	// routePublish: client publish, which refuses an oversized body before
	// a session exists.
	routePublish
)

// guard wraps a transport handler with the per-address limits: the connect
// rate, then a connection slot held for as long as the connection lives (a
// hijacked WebSocket gives it back when it closes). Refusals are 429 with
// the JSON error body and Retry-After, before any session, upgrade or token
// check, so a flood costs as little as possible. It also counts, by limit,
// what the transport itself refused. The transports know nothing of it.
func (s *Server) guard(route connectRoute, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions { // a preflight opens nothing, and keeps its deadlines
			h.ServeHTTP(w, r)
			return
		}
		// The deadlines boundRequests set are for requests that end soon;
		// a transport sets its own (per write, per pong, per hold). A body
		// keeps the read deadline, so that neither the handler nor net/http
		// after it (reading what the handler left) waits for it without
		// end; net/http takes it off itself once the body has been read
		// whole, before it reads on to notice a client that leaves.
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{})
		if r.ContentLength == 0 {
			_ = rc.SetReadDeadline(time.Time{})
		}
		key := s.clientKey(r)
		// A POST poll's cursor is in its body, read before the rate check
		// can pick a budget: its connection slot is taken first, so that
		// slow bodies cannot pile up uncounted.
		slotFirst := route == routePoll && r.Method == http.MethodPost
		var release func()
		acquire := func() bool {
			var ok bool
			if release, ok = s.lim.conns.Acquire(key); !ok {
				s.refuseLimited(w, r, limitConnections, "rate limited: too many connections from this address")
			}
			return ok
		}
		if slotFirst && !acquire() {
			return
		}
		limit, reason := limitConnects, "rate limited: too many connects from this address"
		allow := s.lim.connects.Allow
		if route == routePoll && continuingPoll(s.pollValues(r)) {
			limit, reason, allow = limitPolls, "rate limited: too many polls from this address", s.lim.polls.Allow
		}
		if !allow(key) {
			if release != nil {
				release()
			}
			s.refuseLimited(w, r, limit, reason)
			return
		}
		if !slotFirst && !acquire() {
			return
		}
		// Only a JSONP refusal hides its code in the body; a script tag
		// sends GET, so the callback is in the query.
		sniff := route.stream() && strings.Contains(r.URL.RawQuery, "callback")
		gw := &guardWriter{ResponseWriter: w, release: release, sniff: sniff}
		defer gw.finish()
		h.ServeHTTP(gw, r)
		s.countRefusal(route, r, gw)
	})
}

// stream reports whether the route refuses channels before a session exists.
func (r connectRoute) stream() bool { return r == routeStream || r == routePoll }

// pollValues are a long-poll's parameters as the handler reads them
// (http.Request.ParseForm): a POST form's body fields, then the query's.
// It sets them as r.Form and r.PostForm, so that the handler's ParseForm
// does not parse them again. The body is read up to the handler's limit; a
// larger one, or one that failed, is put back for the handler to refuse. The
// read has no deadline of its own: the request's (apiDeadline from its
// start, see guard) bounds it, and net/http takes that off once the body
// is read whole. A slow body holds the connection slot the guard took
// first. nil when the parameters cannot be parsed (the handler answers 400).
func (s *Server) pollValues(r *http.Request) url.Values {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil
	}
	post := url.Values{}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if r.Method == http.MethodPost && r.Body != nil && r.Body != http.NoBody &&
		strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		limit := poll.MaxFormBytes(s.node.Limits())
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil || int64(len(body)) > limit {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
			return q // the handler answers 413, or finds the client gone
		}
		if post, err = url.ParseQuery(string(body)); err != nil {
			return nil
		}
	}
	form := make(url.Values, len(post)+len(q))
	for _, vs := range []url.Values{post, q} {
		for k, v := range vs {
			form[k] = append(form[k], v...)
		}
	}
	r.PostForm, r.Form = post, form
	return form
}

// continuingPoll reports whether a long-poll with parameters q goes on
// from an earlier one: its cursor names one of its channels. A cursor is
// not authenticated: this only picks the budget the request is charged to,
// so it reads the cursor's names without decoding it in full (the handler
// does, and refuses a bad one).
func continuingPoll(q url.Values) bool {
	return q != nil && session.CursorNamesAny(q.Get("cursor"), q["channel"])
}

// refuseLimited answers 429. Allowed cross-origin pages get the CORS headers,
// so that a poll or publish from a page can read why.
func (s *Server) refuseLimited(w http.ResponseWriter, r *http.Request, limit, reason string) {
	s.metrics.Limited(limit)
	transports.AllowOrigin(w, r, s.origins.check)
	w.Header().Set("Retry-After", "1")
	transports.WriteError(w, &session.Error{Code: http.StatusTooManyRequests, Reason: reason})
}

// countRefusal counts a transport's refusal of a request over a limit. The
// HTTP transports check the request's channels and body size before any
// session exists, so the session cannot count those; their answer says
// which limit it was. A JSONP refusal is a 200 whose script passes the
// error to the callback.
func (s *Server) countRefusal(route connectRoute, r *http.Request, gw *guardWriter) {
	if route == routeSession {
		return
	}
	code := gw.status
	if route.stream() && code == http.StatusOK {
		code = jsonpErrorCode(gw.head)
	}
	switch {
	case code == http.StatusRequestEntityTooLarge:
		s.metrics.Limited(limitMessageSize)
	case route.stream() && code == http.StatusTooManyRequests:
		// The only 429 of SSE and poll: more channels than limits.maxChannels.
		s.metrics.Limited(session.LimitChannels)
	case route.stream() && code == http.StatusBadRequest && hasInvalidChannel(r):
		s.metrics.Limited(session.LimitChannelName)
	}
}

// hasInvalidChannel reports whether a stream request names an invalid
// channel. The poll handler has parsed its form by now (query and body);
// SSE reads only the query.
func hasInvalidChannel(r *http.Request) bool {
	vals := r.Form
	if vals == nil {
		vals = r.URL.Query()
	}
	for _, ch := range vals["channel"] {
		if session.ValidateChannel(ch) != nil {
			return true
		}
	}
	return false
}

// sniffLen covers "/**/" + the longest valid callback + `({"error":{"code":NNN`.
const sniffLen = 320

// jsonpErrorCode returns the code of a JSONP error answer's start
// (`/**/cb({"error":{"code":403,…`), or 0.
func jsonpErrorCode(head []byte) int {
	const marker = `({"error":{"code":`
	i := bytes.Index(head, []byte(marker))
	if !bytes.HasPrefix(head, []byte("/**/")) || i < 0 {
		return 0
	}
	n := 0
	for _, c := range head[i+len(marker):] {
		if c < '0' || c > '9' || n > 999 {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// guardWriter passes everything through to the server's writer, holding the
// connection slot until the request ends or, once hijacked, the connection
// closes. It records the status and, for JSONP, the first bytes of the
// body. Transports reach the server's writer for deadlines through
// Unwrap; gorilla asserts http.Hijacker and sockjs-go http.Flusher, so both
// are implemented here.
type guardWriter struct {
	http.ResponseWriter
	release  func()
	hijacked bool
	status   int
	sniff    bool
	head     []byte
}

var (
	_ http.Flusher  = (*guardWriter)(nil)
	_ http.Hijacker = (*guardWriter)(nil)
)

func (w *guardWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *guardWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *guardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.sniff && len(w.head) < sniffLen {
		w.head = append(w.head, p[:min(len(p), sniffLen-len(w.head))]...)
	}
	return w.ResponseWriter.Write(p)
}

// FlushError flushes past echo's Response, whose Flush drops the error that
// tells a stream its client is gone.
func (w *guardWriter) FlushError() error {
	inner := w.ResponseWriter
	if er, ok := inner.(*echo.Response); ok {
		inner = er.Writer
	}
	return http.NewResponseController(inner).Flush()
}

func (w *guardWriter) Flush() { _ = w.FlushError() }

func (w *guardWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	return &releaseConn{Conn: c, release: w.release}, brw, nil
}

// finish gives the slot back unless a hijacked connection holds it.
func (w *guardWriter) finish() {
	if !w.hijacked {
		w.release()
	}
}

// releaseConn gives a hijacked connection's slot back when it closes.
type releaseConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// SyscallConn is the socket's, so that the streaming transports can write
// to it without blocking (netconn.Conn).
func (c *releaseConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

func (c *releaseConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// The answers to a credential over its rate.
var (
	errRateLimited     = &session.Error{Code: http.StatusTooManyRequests, Reason: "rate limited: too many publishes for this API key"}
	errAPICallsLimited = &session.Error{Code: http.StatusTooManyRequests, Reason: "rate limited: too many API calls for this API key"}
)

// takePublishes spends n publications of the request's publisher, or
// answers 429. An open API has no publisher and no limit.
func (s *Server) takePublishes(c echo.Context, n int) error {
	return s.spend(c, s.lim.publishes, n, limitPublishes, errRateLimited)
}

// refundPublishes gives back n publications of the request's publisher's
// rate: those a batch or broadcast charged up front but never attempted
// (cut short, or after an earlier failure on their channel), which a
// resend will be charged again.
func (s *Server) refundPublishes(c echo.Context, n int) {
	if p := publisherOf(c); p != nil && n > 0 {
		s.lim.publishes.Refund(p.limitKey, n)
	}
}

// limitAPICalls spends one of the request's publisher's API calls (see
// RateLimits.APICallsPerSecond) before the handler runs, or answers 429.
func (s *Server) limitAPICalls(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.spend(c, s.lim.apiCalls, 1, limitAPICalls, errAPICallsLimited); err != nil {
			return err
		}
		return next(c)
	}
}

// spend takes n from the request's publisher's bucket in lim, or counts the
// refusal under label and answers refusal with Retry-After. An open API has
// no publisher, and a nil lim no limit.
func (s *Server) spend(c echo.Context, lim *auth.KeyedLimiter, n int, label string, refusal error) error {
	p := publisherOf(c)
	if p == nil || lim.AllowN(p.limitKey, n) {
		return nil
	}
	s.metrics.Limited(label)
	c.Response().Header().Set("Retry-After", retryAfter(lim.RetryAfter(p.limitKey, n)))
	return refusal
}

// retryAfter is a Retry-After header value for a wait of d: whole seconds,
// rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
