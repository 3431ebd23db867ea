package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/server/auth"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/redis"
	"github.com/waterspout/waterspout/transports"
)

// HTTP server settings. There is no overall read or write timeout: streams
// stay open for hours; API routes set their own deadlines, transports set
// one per write, and WebSockets find dead peers by ping and pong. A client
// that sends its headers slowly is cut after readHeaderTimeout, and an idle
// kept-alive connection after idleTimeout.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// Server is one WaterSpout node: the echo router, the session node and its
// broker, the metrics, and the HTTP server once Run starts it.
type Server struct {
	cfg         Config
	log         *slog.Logger
	echo        *echo.Echo
	node        *session.Node
	broker      io.Closer
	metrics     *metrics
	auth        *apiAuth
	authz       *auth.Authorizer
	lim         *limiters
	origins     *originPolicy
	limits      session.Limits
	tcfg        transports.Config
	clientFiles map[string]clientFile
	// admin is the operator's view at /admin; nil without an admin secret.
	admin *adminView
	// started is when New built the server (the admin view's uptime).
	started time.Time

	// refusedOrigins logs what checkOrigin refuses.
	refusedOrigins *refusedOrigins
	refusals       *refusalLog // bounds the request log's refusal lines

	// stopping turns /readyz to 503 from the first moment of a shutdown.
	stopping atomic.Bool
	// baseCtx is every request's parent; cancelled last in a shutdown so
	// that any stream still open ends.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	mu  sync.Mutex
	ln  *netconn.ReuseListener // takes back held polls' connections
	srv *http.Server

	shutdownOnce sync.Once
	shutdownDone chan struct{}
	shutdownErr  error

	// HTTP server timeouts, from the constants; tests shorten them.
	readHeaderTimeout, idleTimeout time.Duration
	// requestTimeout bounds reading and answering every request that is not
	// a transport's (see boundRequests); apiDeadline, shortened in tests.
	requestTimeout time.Duration
	// handler is echo behind boundRequests: what the HTTP server serves.
	handler http.Handler
}

// New builds a server from cfg (validated here) without listening yet.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		var err error
		if log, err = NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat); err != nil {
			return nil, err
		}
	}
	origins, err := parseOrigins(cfg.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	clientFiles, err := loadClientFiles(cfg.ClientFS)
	if err != nil {
		return nil, err
	}
	verifier, err := cfg.Tokens.verifier()
	if err != nil {
		return nil, err
	}
	apiAuth, err := newAPIAuth(cfg.APIKeys, verifier)
	if err != nil {
		return nil, err
	}
	admin, err := newAdminView(cfg.Admin)
	if err != nil {
		return nil, err
	}
	// Installed even without token keys: it keeps personal channels
	// (user#<sub>) private in anonymous namespaces and refuses tokens
	// clearly instead of ignoring them.
	authz := auth.NewAuthorizer(verifier, auth.AuthorizerOptions{Logger: log})
	broker, closer, err := newBroker(cfg, log)
	if err != nil {
		return nil, err
	}
	m := newMetrics()
	if mb, ok := broker.(*session.MemoryBroker); ok {
		m.channelStates(mb.ChannelCount)
	}
	node, err := session.New(session.Config{
		Broker: broker, Namespaces: cfg.Namespaces, Limits: cfg.Limits, Ping: cfg.Ping,
		Logger: log, Metrics: m, Authorizer: authz, CommandRate: cfg.RateLimits.commandRate(),
		MaxPresence: cfg.Presence.MaxClients, JoinLeaveLimit: cfg.Presence.JoinLeaveLimit,
		MaxPresenceListed: cfg.Presence.ListLimit, PollLease: cfg.Presence.pollLease(cfg.PollTimeout),
	})
	if err != nil {
		closer.Close()
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: log, node: node, broker: closer, metrics: m,
		auth: apiAuth, authz: authz, lim: newLimiters(cfg.RateLimits, nil), origins: origins, limits: node.Limits(),
		clientFiles: clientFiles, admin: admin, started: time.Now(), shutdownDone: make(chan struct{}),
		readHeaderTimeout: readHeaderTimeout, idleTimeout: idleTimeout, requestTimeout: apiDeadline,
	}
	s.refusedOrigins = newRefusedOrigins(log, nil)
	s.refusals = newRefusalLog(nil)
	apiAuth.clientKey, apiAuth.limited = s.clientKey, m.Limited
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.tcfg = transports.Config{
		Node: node, CheckOrigin: s.checkOrigin, Authenticate: authz.Authenticate,
		WriteTimeout: cfg.WriteTimeout, Logger: log, Reuse: reuser{s},
		Writers: transports.NewWriters(log), // this server's own: two servers share no writers
		// Ends when the server has shut down: the transports end their
		// connections then, since http.Server.Shutdown does not see
		// hijacked ones.
		Context: s.baseCtx,
	}
	s.echo = s.newEcho()
	s.handler = s.boundRequests(s.echo)
	if err := s.routes(); err != nil {
		s.cancelBase()
		closer.Close()
		return nil, err
	}
	return s, nil
}

// redisConfig is the Redis broker's part of the configuration.
func (c *Config) redisConfig() redis.Config {
	return redis.Config{
		URL:              c.RedisURL,
		SentinelAddrs:    c.RedisSentinels,
		MasterName:       c.RedisMaster,
		ClusterAddrs:     c.RedisCluster,
		Username:         c.RedisUsername,
		Password:         c.RedisPassword,
		SentinelPassword: c.RedisSentinelPassword,
		AllowEviction:    c.RedisAllowEviction,
		MaxChannelStarts: c.MaxServerChannels,
	}
}

// newBroker builds the configured broker. It is the one place a new broker
// is added.
func newBroker(cfg Config, log *slog.Logger) (session.Broker, io.Closer, error) {
	switch cfg.Broker {
	case "memory":
		b := session.NewMemoryBroker(session.MemoryBrokerConfig{MaxChannels: cfg.MaxServerChannels})
		return b, b, nil
	case "redis":
		rc := cfg.redisConfig()
		rc.Logger = log
		b, err := redis.New(rc)
		if err != nil {
			return nil, nil, fmt.Errorf("redis broker: %w", err)
		}
		return b, b, nil
	}
	return nil, nil, fmt.Errorf("unknown broker %q", cfg.Broker)
}

func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard) // everything goes through s.log
	e.HTTPErrorHandler = errorHandler(s.log)
	e.IPExtractor = ipExtractor(s.cfg.TrustedProxies)
	return e
}

// ipExtractor believes X-Forwarded-For only from the configured proxies
// (echo's own defaults would trust every private address).
func ipExtractor(proxies []string) echo.IPExtractor {
	prefixes, _ := parseProxies(proxies) // checked by Validate
	if len(prefixes) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range prefixes {
		_, n, err := net.ParseCIDR(p.String())
		if err == nil {
			opts = append(opts, echo.TrustIPRange(n))
		}
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// Handler returns the server's HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Node returns the session node, for embedding and tests.
func (s *Server) Node() *session.Node { return s.node }

// Listen opens the listener on Config.Addr if it is not open yet, and
// returns its address (useful with port 0). Run calls it.
func (s *Server) Listen() (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr(), nil
	}
	if s.stopping.Load() {
		return nil, http.ErrServerClosed
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = netconn.NewReuseListener(ln, s.idleTimeout)
	s.ln.SetStallBound(s.cfg.stallBound())
	return ln.Addr(), nil
}

// reuser is the server's transports.Reuser: it hands a held long-poll's
// hijacked connection back to the HTTP server for the client's next
// request, giving back the slot the hijack kept in the per-address
// connection limit (the next request takes its own). Until the server
// listens (a Server used as an http.Handler only), it accepts nothing.
type reuser struct{ s *Server }

func (r reuser) listener() *netconn.ReuseListener {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.s.ln
}

func (r reuser) Accepting() bool {
	if r.s.stopping.Load() { // answers during a shutdown close their connections
		return false
	}
	ln := r.listener()
	return ln != nil && ln.Accepting()
}

func (r reuser) Reuse(c net.Conn, buffered []byte) {
	if rc, ok := c.(*releaseConn); ok {
		rc.once.Do(rc.release)
		c = rc.Conn
	}
	ln := r.listener()
	if ln == nil {
		c.Close()
		return
	}
	ln.Reuse(c, buffered)
}

// Run listens and serves until ctx ends, then shuts down gracefully within
// Config.ShutdownTimeout. It returns nil after a clean shutdown (whether ctx
// ended or Shutdown was called), and the error otherwise.
func (s *Server) Run(ctx context.Context) error {
	addr, err := s.Listen()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.srv != nil || s.stopping.Load() {
		s.mu.Unlock()
		return errors.New("server: Run called twice or after Shutdown")
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.readHeaderTimeout,
		IdleTimeout:       s.idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ConnContext:       netconn.ConnContext, // lets a stream given up on abort its connection
	}
	s.srv = srv
	ln := s.ln
	s.mu.Unlock()

	var algs []string
	if s.auth.tokens != nil {
		algs = s.auth.tokens.Algorithms()
	}
	s.log.Info("listening", "addr", addr.String(), "broker", s.cfg.Broker,
		"api_keys", len(s.cfg.APIKeys), "token_algorithms", algs, "client_bundle", len(s.clientFiles) > 0,
		"admin", s.admin != nil)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) { // Shutdown was called
			<-s.shutdownDone
			return s.shutdownErr
		}
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		return errors.Join(fmt.Errorf("serve: %w", err), s.Shutdown(sctx))
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		err := s.Shutdown(sctx)
		<-served
		return err
	}
}

// Shutdown stops the server gracefully, in this order: /readyz answers 503;
// every client is told to reconnect elsewhere (disconnect 3001) and the
// transports close (hijacked WebSockets included); the listener closes and
// in-flight HTTP requests finish; the broker closes. When ctx ends first,
// the remaining connections are cut. Later calls wait for the first.
func (s *Server) Shutdown(ctx context.Context) error {
	first := false
	s.shutdownOnce.Do(func() { first = true })
	if !first {
		select {
		case <-s.shutdownDone:
			return s.shutdownErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.shutdownErr = s.shutdown(ctx)
	close(s.shutdownDone)
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.log.Info("shutting down", "sessions", s.node.SessionCount())
	var errs []error
	if err := s.node.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.mu.Unlock()
	switch {
	case srv != nil:
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("server: http shutdown: %w", err))
			srv.Close()
		}
	case ln != nil: // listened, never served
		ln.Close()
	}
	s.cancelBase()
	if err := s.broker.Close(); err != nil {
		errs = append(errs, fmt.Errorf("server: close broker: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("shutdown was not clean", "err", err)
		return err
	}
	s.log.Info("shut down")
	return nil
}
