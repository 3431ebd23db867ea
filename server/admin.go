package server

import (
	"cmp"
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	dto "github.com/prometheus/client_model/go"

	"github.com/waterspout/waterspout/internal/buildinfo"
	"github.com/waterspout/waterspout/server/auth"
	"github.com/waterspout/waterspout/session/redis"
)

// The operator's live view: GET /admin is a page (HTML, script and style
// embedded below, nothing from elsewhere) that asks for the admin secret and
// polls GET /admin/state, this node's state as JSON. Without a secret
// configured none of it is registered, so every /admin path answers 404 as
// any unknown path does. See docs/OPERATIONS.md ("The admin view") and
// docs/SECURITY.md ("The admin secret").

// AdminConfig configures the operator's live view at /admin.
type AdminConfig struct {
	// SecretFile names a file holding the secret that opens /admin
	// (--admin-secret-file): at least auth.MinSecretBytes bytes, no white
	// space or control bytes; trailing CR and LF bytes are ignored. Empty:
	// /admin is off and answers 404.
	SecretFile string `json:"secretFile"`
}

// secret loads the secret, or returns nil when none is configured.
func (a AdminConfig) secret() (*auth.APIKeys, error) {
	if a.SecretFile == "" {
		return nil, nil
	}
	b, err := readSecretFile(a.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("admin secret: %w", err)
	}
	if len(b) < auth.MinSecretBytes {
		return nil, fmt.Errorf("admin secret in %s is %d bytes, under %d: write a long random one (head -c 32 /dev/urandom | base64 > FILE)",
			a.SecretFile, len(b), auth.MinSecretBytes)
	}
	// Printable ASCII only: the page sends the secret as typed, and a
	// browser encodes other characters its own way, while the header's
	// reader trims Unicode white space (U+00A0) from its ends. A secret
	// that no client could present would start a view nobody can open.
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return nil, fmt.Errorf("admin secret in %s has white space, control or non-ASCII bytes: it travels in an Authorization header, so write it in printable ASCII (head -c 32 /dev/urandom | base64 > FILE)", a.SecretFile)
		}
	}
	return auth.NewAPIKeys(string(b))
}

// Failed admin logins per client address: adminFailBurst at once, then one
// per adminFailEvery. A right secret costs nothing.
const (
	adminFailBurst = 10
	adminFailEvery = 10 * time.Second
)

// adminStateMaxAge is how long one computed state answers every request:
// computing it reads the metrics registry and, on Redis, every node's
// channel report (an HGETALL of each: about 20 ms of Redis for 100,000
// channels, 160 ms for the request). However many pages poll, and however
// often a script asks, a node computes at most one state this often, and
// requests that come while one is computed wait for it.
const adminStateMaxAge = time.Second

// adminView is the state of /admin; nil on a server without it.
type adminView struct {
	secret *auth.APIKeys // digests only: it prints as redacted
	// failures holds each client address's budget of failed logins.
	failures *auth.KeyedLimiter
	maxAge   time.Duration // adminStateMaxAge; tests set 0

	// mu is held while a state is computed, so that requests share one.
	mu     sync.Mutex
	last   *adminState
	lastAt time.Time
}

func newAdminView(cfg AdminConfig) (*adminView, error) {
	secret, err := cfg.secret()
	if secret == nil || err != nil {
		return nil, err
	}
	return &adminView{
		secret:   secret,
		failures: auth.NewKeyedLimiter(1/adminFailEvery.Seconds(), adminFailBurst, maxLimiterKeys, nil),
		maxAge:   adminStateMaxAge,
	}, nil
}

// The page, its script and its style. The page has no inline script or
// style, so adminCSP needs no hash and no 'unsafe-inline'.
var (
	//go:embed admin/index.html
	adminPage []byte
	//go:embed admin/admin.js
	adminScript []byte
	//go:embed admin/admin.css
	adminStyle []byte
)

// adminCSP: the page's own files and its own origin only, no framing
// (clickjacking), no <base> and no form submission (the login form is
// handled by the script; were the script missing, submitting must not put
// anything in a URL).
const adminCSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// adminRoutes registers /admin when a secret is configured. The page and
// its files take no secret: they hold nothing but code, and the browser
// cannot send a header when it navigates. The state takes it.
func (s *Server) adminRoutes(page []echo.MiddlewareFunc) {
	if s.admin == nil {
		return
	}
	e := s.echo
	getHead := []string{http.MethodGet, http.MethodHead}
	e.Match(getHead, "/admin", adminFile(adminPage, "text/html; charset=utf-8"), page...)
	e.Match(getHead, "/admin/admin.js", adminFile(adminScript, "text/javascript; charset=utf-8"), page...)
	e.Match(getHead, "/admin/admin.css", adminFile(adminStyle, "text/css; charset=utf-8"), page...)
	// Refusals are logged at warn, as on /api/*: a run of 401s is someone
	// guessing. The origin is checked before the secret; a request without
	// a credential spends nothing of the address's budget either (adminAuth).
	e.GET("/admin/state", s.handleAdminState,
		requestLog(s.log, slog.LevelDebug, slog.LevelWarn, s.refusals), s.recover(), withAdminHeaders, s.originMiddleware, s.adminAuth)
}

// withAdminHeaders gives every answer of the state, refusals included, the
// headers of the page's files.
func withAdminHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		adminHeaders(c.Response().Header())
		return next(c)
	}
}

// adminFile serves one embedded file with the headers every /admin answer has.
func adminFile(body []byte, contentType string) echo.HandlerFunc {
	return func(c echo.Context) error {
		adminHeaders(c.Response().Header())
		return c.Blob(http.StatusOK, contentType, body)
	}
}

func adminHeaders(h http.Header) {
	h.Set("Content-Security-Policy", adminCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// adminAuth lets a request through with the admin secret as its Bearer
// credential, compared in constant time (auth.APIKeys hashes both sides).
// Each attempt spends one of the client address's failed-login budget
// before the comparison and a right secret gives it back: spending after
// the comparison would let concurrent guesses all pass on the last
// remaining one, and an address that has spent its budget is refused even
// with the right secret, or the limit would not limit guessing.
func (s *Server) adminAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		h := c.Response().Header()
		if err := oneAuthorization(r); err != nil {
			return err
		}
		// Only a request that presents a credential is a guess. One without
		// (an <img> or no-cors fetch from a foreign page, which sends no
		// Origin either) is refused without spending the address's budget:
		// charging it would let any page the operator visits lock them out.
		// A foreign page cannot send Authorization: that needs a CORS
		// preflight, which this route never answers with CORS headers.
		// Nor is a Basic header (a URL with user info), which no Bearer
		// secret matches, nor a request a browser marks as sent for another
		// site (Sec-Fetch-Site): the page itself is always same-origin.
		if auth.BearerToken(r.Header.Get("Authorization")) == "" {
			h.Set("WWW-Authenticate", `Bearer realm="waterspout admin"`)
			return apiError(http.StatusUnauthorized, "missing admin secret (Authorization: Bearer <secret>)")
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			return apiError(http.StatusForbidden, "the admin state answers its own page only (Sec-Fetch-Site: %s)", site)
		}
		key := s.clientKey(r)
		if !s.admin.failures.Allow(key) {
			s.metrics.Limited(limitAdminLogins)
			h.Set("Retry-After", strconv.Itoa(int(adminFailEvery.Seconds())))
			return apiError(http.StatusTooManyRequests, "rate limited: too many failed admin logins from this address")
		}
		if !s.admin.secret.Check(r.Header.Get("Authorization")) {
			h.Set("WWW-Authenticate", `Bearer realm="waterspout admin"`)
			return apiError(http.StatusUnauthorized, "wrong admin secret")
		}
		s.admin.failures.Refund(key, 1)
		return next(c)
	}
}

// adminTopChannels is how many channels the state lists, busiest first.
const adminTopChannels = 20

// adminState is the answer of GET /admin/state. Every count of sessions and
// every counter is read from the metrics registry /metrics serves, in one
// gather, so that the two cannot disagree.
type adminState struct {
	Time     time.Time     `json:"time"`
	Node     adminNode     `json:"node"`
	Broker   adminBroker   `json:"broker"`
	Sessions adminSessions `json:"sessions"`
	Channels adminChannels `json:"channels"`
	Counters adminCounters `json:"counters"`
}

type adminNode struct {
	Version string    `json:"version"`
	Go      string    `json:"go"`
	Started time.Time `json:"started"`
	// UptimeSeconds is since Started, whole seconds.
	UptimeSeconds  int64 `json:"uptimeSeconds"`
	Goroutines     int64 `json:"goroutines"`     // go_goroutines
	HeapInUseBytes int64 `json:"heapInUseBytes"` // go_memstats_heap_inuse_bytes
}

type adminBroker struct {
	Name string `json:"name"` // memory or redis
	// Ready and Reason are what /readyz answers (200, or 503 and why).
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
	// ChannelStates is waterspout_channel_states (memory broker only).
	ChannelStates *int64 `json:"channelStates,omitempty"`
	// Nodes are the nodes sharing the Redis broker by their heartbeats,
	// this one marked self; absent on the memory broker (one process).
	Nodes []redis.NodeBeat `json:"nodes,omitempty"`
	// NodesError says why Nodes could not be read.
	NodesError string `json:"nodesError,omitempty"`
}

type adminSessions struct {
	Total       int64            `json:"total"`
	ByTransport map[string]int64 `json:"byTransport"` // waterspout_connections
}

type adminChannels struct {
	// Scope is "node" (the memory broker: this process is the server) or
	// "cluster" (Redis: every node, by their latest reports, as
	// GET /api/channels answers).
	Scope string `json:"scope"`
	// Count is the channels with subscribers, Subscriptions their
	// subscribers added up (a session on three channels counts three).
	Count         int                `json:"count"`
	Subscriptions int64              `json:"subscriptions"`
	Top           []adminChannelLine `json:"top"`
	// Error says why the channels could not be read (the broker is down).
	Error string `json:"error,omitempty"`
}

type adminChannelLine struct {
	Channel     string `json:"channel"`
	Subscribers int    `json:"subscribers"`
}

// adminCounters are the node's counters since it started, by metric.
type adminCounters struct {
	Publications          int64            `json:"publications"`          // waterspout_publications_total
	DuplicatePublications int64            `json:"duplicatePublications"` // waterspout_duplicate_publications_total
	Deliveries            map[string]int64 `json:"deliveries"`            // waterspout_deliveries_total by transport
	SessionsOpened        map[string]int64 `json:"sessionsOpened"`        // waterspout_sessions_opened_total by transport
	SessionsClosed        []adminCount     `json:"sessionsClosed"`        // waterspout_sessions_closed_total
	SlowClients           map[string]int64 `json:"slowClients"`           // waterspout_slow_clients_total by transport
	Limited               map[string]int64 `json:"limited"`               // waterspout_limited_total by limit
	OriginsRefused        int64            `json:"originsRefused"`        // waterspout_origins_refused_total
	APIRequests           []adminCount     `json:"apiRequests"`           // waterspout_api_requests_total
}

// adminCount is one series of a counter with two labels.
type adminCount struct {
	Transport string `json:"transport,omitempty"`
	Route     string `json:"route,omitempty"`
	Code      string `json:"code"`
	Count     int64  `json:"count"`
}

func (s *Server) handleAdminState(c echo.Context) error {
	st, err := s.sharedAdminState(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// sharedAdminState returns the state computed within the last maxAge, or
// computes it, one request at a time (see adminStateMaxAge).
func (s *Server) sharedAdminState(ctx context.Context) (*adminState, error) {
	v := s.admin
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.last != nil && time.Since(v.lastAt) < v.maxAge {
		return v.last, nil
	}
	st, err := s.adminState(ctx)
	if err != nil {
		return nil, err
	}
	v.last, v.lastAt = st, time.Now()
	return st, nil
}

// adminState reads the node's state now.
func (s *Server) adminState(ctx context.Context) (*adminState, error) {
	families, err := s.metrics.reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("admin state: gather metrics: %w", err)
	}
	g := gathered{}
	for _, f := range families {
		g[f.GetName()] = f.GetMetric()
	}
	now := time.Now()
	st := &adminState{
		Time: now.UTC(),
		Node: adminNode{
			Version: s.version(), Go: runtime.Version(),
			Started: s.started.UTC(), UptimeSeconds: int64(now.Sub(s.started).Seconds()),
			Goroutines:     int64(g.sum("go_goroutines", "", "")),
			HeapInUseBytes: int64(g.sum("go_memstats_heap_inuse_bytes", "", "")),
		},
		Broker: adminBroker{Name: s.cfg.Broker, Ready: true},
		Counters: adminCounters{
			Publications:          int64(g.sum("waterspout_publications_total", "", "")),
			DuplicatePublications: int64(g.sum("waterspout_duplicate_publications_total", "", "")),
			Deliveries:            g.by("waterspout_deliveries_total", "transport"),
			SessionsOpened:        g.by("waterspout_sessions_opened_total", "transport"),
			SessionsClosed:        g.pairs("waterspout_sessions_closed_total", "transport"),
			SlowClients:           g.by("waterspout_slow_clients_total", "transport"),
			Limited:               g.by("waterspout_limited_total", "limit"),
			OriginsRefused:        int64(g.sum("waterspout_origins_refused_total", "", "")),
			APIRequests:           g.pairs("waterspout_api_requests_total", "route"),
		},
	}
	if err := s.readiness(ctx); err != nil {
		st.Broker.Ready, st.Broker.Reason = false, err.Error()
	}
	if _, ok := g["waterspout_channel_states"]; ok {
		n := int64(g.sum("waterspout_channel_states", "", ""))
		st.Broker.ChannelStates = &n
	}
	if nl, ok := s.broker.(nodeLister); ok {
		nctx, cancel := context.WithTimeout(ctx, readyTimeout)
		nodes, err := nl.Nodes(nctx)
		cancel()
		if err != nil {
			st.Broker.NodesError = err.Error()
		}
		st.Broker.Nodes = nodes
	}
	st.Sessions.ByTransport = g.by("waterspout_connections", "transport")
	for _, n := range st.Sessions.ByTransport {
		st.Sessions.Total += n
	}
	st.Channels = s.adminChannels(ctx)
	return st, nil
}

// nodeLister is a broker that knows the nodes sharing it (the Redis
// broker, by their heartbeats).
type nodeLister interface {
	Nodes(ctx context.Context) ([]redis.NodeBeat, error)
}

var _ nodeLister = (*redis.Broker)(nil)

// adminChannels counts the channels as GET /api/channels does
// (session.Node.ChannelCounts) and keeps the busiest.
func (s *Server) adminChannels(ctx context.Context) adminChannels {
	out := adminChannels{Scope: "node", Top: []adminChannelLine{}}
	if s.cfg.Broker != "memory" {
		out.Scope = "cluster"
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	counts, err := s.node.ChannelCounts(ctx, "")
	if err != nil {
		out.Error = err.Error()
		return out
	}
	top := make([]adminChannelLine, 0, adminTopChannels+1)
	busier := func(a, b adminChannelLine) int {
		return cmp.Or(cmp.Compare(b.Subscribers, a.Subscribers), strings.Compare(a.Channel, b.Channel))
	}
	for ch, k := range counts {
		if k <= 0 {
			continue
		}
		out.Count++
		out.Subscriptions += int64(k)
		line := adminChannelLine{ch, k}
		// Keep the adminTopChannels busiest in order, in one pass: the
		// list is short, the channels may be a million.
		if len(top) == adminTopChannels && busier(line, top[len(top)-1]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(top, line, busier)
		top = slices.Insert(top, i, line)
		if len(top) > adminTopChannels {
			top = top[:adminTopChannels]
		}
	}
	out.Top = top
	return out
}

// version is Config.Version, else what `waterspout version` would print
// for this binary's build info.
func (s *Server) version() string {
	if s.cfg.Version != "" {
		return s.cfg.Version
	}
	bi, _ := debug.ReadBuildInfo()
	return buildinfo.String("", "", bi)
}

// gathered is one gather of the metrics registry: each metric's series.
type gathered map[string][]*dto.Metric

// value is a series' number, whatever the metric's type.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// sum adds up the series of name whose label lbl is val (all when lbl is "").
func (g gathered) sum(name, lbl, val string) float64 {
	t := 0.0
	for _, m := range g[name] {
		if lbl == "" || label(m, lbl) == val {
			t += value(m)
		}
	}
	return t
}

// by adds up the series of name by their label lbl.
func (g gathered) by(name, lbl string) map[string]int64 {
	out := map[string]int64{}
	for _, m := range g[name] {
		out[label(m, lbl)] += int64(value(m))
	}
	return out
}

// pairs lists the series of name by their label first ("transport" or
// "route") and "code", in that order.
func (g gathered) pairs(name, first string) []adminCount {
	out := []adminCount{}
	for _, m := range g[name] {
		c := adminCount{Code: label(m, "code"), Count: int64(value(m))}
		if first == "route" {
			c.Route = label(m, first)
		} else {
			c.Transport = label(m, first)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b adminCount) int {
		return cmp.Or(strings.Compare(a.Transport+a.Route, b.Transport+b.Route), strings.Compare(a.Code, b.Code))
	})
	return out
}
