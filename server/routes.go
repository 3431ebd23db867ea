package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
	"github.com/waterspout/waterspout/transports/poll"
	"github.com/waterspout/waterspout/transports/sockjs"
	"github.com/waterspout/waterspout/transports/sse"
	"github.com/waterspout/waterspout/transports/ws"
)

// apiDeadline bounds reading a request that is not a transport's (an API
// request, a page, a health check, an unknown route) and, with as long
// again, writing its answer, so a slow client cannot hold a handler (the
// http.Server has no read or write timeout: streams live for hours). See
// boundRequests.
const apiDeadline = 30 * time.Second

// bodyOverhead is what a publish body may hold beside its data: field
// names, the channel (≤ 255 bytes) and the key (≤ 256 bytes).
const bodyOverhead = 8 << 10

// routes registers every route. Middleware is attached per route,
// never with e.Use or e.Pre: nothing may wrap the /connect/* streams.
func (s *Server) routes() error {
	e := s.echo

	quiet := []echo.MiddlewareFunc{requestLog(s.log, slog.LevelDebug, slog.LevelDebug, nil), s.recover()}
	page := []echo.MiddlewareFunc{requestLog(s.log, slog.LevelDebug, slog.LevelWarn, s.refusals), s.recover()}
	getHead := []string{http.MethodGet, http.MethodHead}

	e.Match(getHead, "/livez", s.handleLivez, quiet...)
	e.Match(getHead, "/readyz", s.handleReadyz, quiet...)
	e.GET("/metrics", echo.WrapHandler(s.metrics.handler()), quiet...)
	e.Match(getHead, "/", s.handleDemo, page...)
	e.Match(getHead, "/client/:file", s.handleClient, page...)

	// Per route rather than on a group: echo gives a group with middleware
	// a catch-all route, which would turn 405s into 404s. The chain is
	// built once, here (see chain).
	api := func(h echo.HandlerFunc, extra ...echo.MiddlewareFunc) echo.HandlerFunc {
		return chain(h, append([]echo.MiddlewareFunc{
			requestLog(s.log, slog.LevelDebug, slog.LevelWarn, s.refusals), s.apiMetrics, s.recover(),
			s.originMiddleware, s.auth.middleware, singleQuery,
		}, extra...)...)
	}
	maxData := int64(s.limits.MaxMessageBytes)
	e.POST("/api/publish", api(s.handlePublish, bodyLimit(func(r *http.Request) int64 {
		if kind, err := kindOf(r.Header.Get(echo.HeaderContentType)); err == nil && kind == bodyForm {
			return 3*maxData + bodyOverhead // percent-encoding triples a byte at worst
		}
		return maxData + bodyOverhead
	})))
	e.POST("/api/broadcast", api(s.handleBroadcast, bodyLimit(func(*http.Request) int64 {
		return maxData + maxBroadcastChannels*(session.MaxChannelLen+3) + bodyOverhead
	})))
	e.POST("/api/batch", api(s.handleBatch, bodyLimit(func(*http.Request) int64 {
		return int64(s.cfg.maxBatchBytes())
	})))
	e.GET("/api/history", api(s.handleHistory, s.limitAPICalls))
	e.Match(getHead, "/api/openapi.json", s.handleOpenAPI, page...)
	s.serverAPIRoutes(api)
	s.adminRoutes(page)

	return s.mountTransports()
}

// mountTransports is the one place the transports are mounted. Each is a
// plain http.Handler wrapped with echo.WrapHandler and no middleware at all:
// gzip, timeouts and recoverers that write to a hijacked connection break
// streams, so every transport handles its own panics, limits, deadlines,
// methods and CORS preflights (hence Any). Only guard sits in front, as a
// plain http.Handler too: the per-address limits. All share s.tcfg: one
// origin policy, one authenticator, one logger, one node, one server-wide
// context (see New).
func (s *Server) mountTransports() error {
	e, tcfg, cfg := s.echo, s.tcfg, s.cfg
	mount := func(path string, route connectRoute, h http.Handler) {
		e.Any(path, echo.WrapHandler(s.guard(route, h)))
	}
	wsh, err := ws.New(tcfg, ws.Options{})
	if err != nil {
		return fmt.Errorf("mount ws: %w", err)
	}
	mount("/connect/ws", routeSession, wsh)

	sseh, err := sse.New(tcfg)
	if err != nil {
		return fmt.Errorf("mount sse: %w", err)
	}
	mount("/connect/sse", routeStream, sseh)
	pub, err := sse.NewPublishHandler(tcfg)
	if err != nil {
		return fmt.Errorf("mount client publish: %w", err)
	}
	mount("/connect/publish", routePublish, pub)

	pollh, err := poll.New(tcfg, poll.Options{Timeout: cfg.PollTimeout, Detach: cfg.PollDetach})
	if err != nil {
		return fmt.Errorf("mount poll: %w", err)
	}
	mount("/connect/poll", routePoll, pollh)

	sj, err := sockjs.New(tcfg, sockjs.Options{
		Prefix: sockjsPrefix, StickyCookie: cfg.SockJSStickyCookie,
	})
	if err != nil {
		return fmt.Errorf("mount sockjs: %w", err)
	}
	mount(sockjsPrefix, routeSession, sj)
	mount(sockjsPrefix+"/*", routeSession, sj)
	return nil
}

// sockjsPrefix is where the SockJS endpoint lives; sockjs-go strips it from
// every request path, so it is the whole mounted path.
const sockjsPrefix = "/connect/sockjs"

// recover turns a panic in a handler into a 500 answer and a log line with
// the stack. It is never on /connect/*: a hijacked connection cannot take
// an HTTP answer, so transports recover by themselves. (echo's middleware
// package is not used: it would pull in golang.org/x/time for its rate
// limiter.)
func (s *Server) recover() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				r := recover()
				if r == nil {
					return
				}
				if r == http.ErrAbortHandler { // net/http's way to abort quietly
					panic(r)
				}
				stack := make([]byte, 8<<10)
				stack = stack[:runtime.Stack(stack, false)]
				s.log.Error("panic in handler", "path", c.Path(), "panic", fmt.Sprint(r), "stack", string(stack))
				err = session.ErrInternal
			}()
			return next(c)
		}
	}
}

// chain applies middleware to h once. echo applies a route's middleware
// anew on every request (seven closures per /api/* request, about 1.5 % of
// a publish's CPU in S4); applied here, the route holds the built chain.
// It suits only middleware that keeps no state of its own per application,
// which is all of this package's: theirs lives on the Server.
func chain(h echo.HandlerFunc, mw ...echo.MiddlewareFunc) echo.HandlerFunc {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// apiMetrics counts each /api/* answer by route pattern and status.
func (s *Server) apiMetrics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := next(c); err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		s.metrics.apiRequest(c.Path(), status)
		if status == http.StatusRequestEntityTooLarge {
			s.metrics.Limited(limitMessageSize)
		}
		return nil
	}
}

// boundRequests gives every request a read deadline of s.requestTimeout,
// and a write deadline that leaves as long again for the answer, before
// echo routes it. The guard in front of each transport takes them off again
// (see guard), since streams, held polls and WebSockets last longer and set
// their own. The HTTP server has no overall read timeout, and net/http reads
// what a handler left of a body (up to 256 KB) before it writes the answer:
// without a deadline, a request announcing a body it never sent held its
// connection and goroutine for good on any route, echo's 404 and 405
// answers included (found 2026-12-07, TestUnreadBodiesAreBounded). When the
// read deadline passes, net/http gives up the body, answers with
// Connection: close and closes the connection.
func (s *Server) boundRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, ok := w.(deadliner) // net/http's own: no controller to allocate per request
		if !ok {
			rc = http.NewResponseController(w) // it finds them under a wrapper
		}
		now := time.Now()
		// Unsupported only under test recorders; nothing to bound there.
		_ = rc.SetReadDeadline(now.Add(s.requestTimeout))
		_ = rc.SetWriteDeadline(now.Add(2 * s.requestTimeout))
		next.ServeHTTP(w, r)
	})
}

// deadliner is what http.ResponseController calls to set deadlines; the
// response writer of net/http's server has both methods.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// originMiddleware refuses API calls from pages of origins not allowed: with
// no API key on loopback, any site the user visits could otherwise post a
// form to the local server.
func (s *Server) originMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !s.checkOrigin(c.Request()) {
			return apiError(http.StatusForbidden, "origin not allowed")
		}
		return next(c)
	}
}

// singleQuery refuses an /api/* request that gives a query parameter more
// than once (?channel=news&channel=admin:1): every parameter of the API
// takes one value, and the handler would read the first where a gateway
// in front may have checked the last.
func singleQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().URL.RawQuery == "" {
			return next(c) // nothing to parse (a publish has no query)
		}
		if err := transports.SingleValued(c.QueryParams()); err != nil {
			return err
		}
		return next(c)
	}
}

// bodyLimit bounds a request body to limit(r) bytes: a declared length above
// it is refused at once, and a longer body fails the read with 413.
func bodyLimit(limit func(r *http.Request) int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			n := limit(r)
			if r.ContentLength > n {
				return &http.MaxBytesError{Limit: n}
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, n)
			return next(c)
		}
	}
}
