package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Namespace holds the options of the channels named "<Name>:…"; the
// namespace with Name "" holds the defaults, used by channels without a
// prefix and by prefixes that are not configured.
type Namespace struct {
	Name        string        `json:"name"`
	HistorySize int           `json:"historySize"` // publications kept per channel; 0 keeps none
	HistoryTTL  time.Duration `json:"historyTTL"`  // how long they are kept
	// Anonymous lets sessions without credentials subscribe.
	Anonymous bool `json:"anonymous"`
	// ClientPublish lets clients (not only backends) publish.
	ClientPublish bool `json:"clientPublish"`
	// Presence keeps who is subscribed to each channel (GET /api/presence,
	// the presence command); the broker must be a Presencer.
	Presence bool `json:"presence"`
	// JoinLeave sends subscribers a join or leave frame when a client
	// subscribes or leaves; it needs Presence.
	JoinLeave bool `json:"joinLeave"`
}

// DefaultNamespace is used when Config.Namespaces has no "" entry.
var DefaultNamespace = Namespace{HistorySize: 1000, HistoryTTL: 10 * time.Minute, Anonymous: true}

// MinKeyTTL is the shortest time an idempotency key is remembered, even in a
// namespace that keeps little or no history.
const MinKeyTTL = 2 * time.Minute

// Authorizer decides what sessions may do. Without one, namespaces decide:
// Anonymous for subscribing and ClientPublish for publishing. Refusals must
// be *Error values (401, 403), which become error frames; a session-ending
// refusal is the Authorizer's to make with Session.Fail.
type Authorizer interface {
	AuthorizeSubscribe(s *Session, ns Namespace, channel, token string) error
	AuthorizePublish(s *Session, ns Namespace, channel string) error
}

// Config configures a Node.
type Config struct {
	Broker     Broker        // required
	Namespaces []Namespace   // options per channel prefix
	Limits     Limits        // zero fields take defaults
	Ping       time.Duration // heartbeat interval announced in hello; default 25 s
	Logger     *slog.Logger  // default slog.Default()
	Metrics    Metrics       // default no-op
	Authorizer Authorizer    // default: namespace rules
	// CommandRate bounds the commands each session may send; zero is
	// unlimited.
	CommandRate CommandRate
	// MaxPresence bounds a channel's presence entries: a subscribe beyond
	// it is refused (429). Default DefaultMaxPresence.
	MaxPresence int
	// JoinLeaveLimit bounds join/leave fan-out: a join or leave is sent only
	// while the channel holds at most this many presence entries, so a
	// reconnect storm of N clients costs at most JoinLeaveLimit² frames per
	// channel rather than N². Default DefaultJoinLeaveLimit.
	JoinLeaveLimit int
	// MaxPresenceListed bounds the `presence` command: a channel with more
	// entries is refused (413, pointing to presence_stats and the server
	// API), so one command cannot cost a whole channel's list.
	// Default DefaultMaxPresenceListed.
	MaxPresenceListed int
	// PollLease is how long a long-poll client's presence entry stays after
	// a poll ends without the next one arriving (see PresenceLeaser): the
	// poll timeout and a grace for the client's next poll. Default
	// DefaultPollLease.
	PollLease time.Duration
}

// Default limits.
const (
	DefaultMaxMessageBytes = 64 << 10
	DefaultMaxChannels     = 128
	DefaultMaxQueueBytes   = 2 << 20
	DefaultPing            = 25 * time.Second
)

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	if c.Broker == nil {
		return errors.New("session: config needs a Broker")
	}
	if c.Limits.MaxMessageBytes <= 0 {
		c.Limits.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.Limits.MaxChannels <= 0 {
		c.Limits.MaxChannels = DefaultMaxChannels
	}
	if c.Limits.MaxQueueBytes <= 0 {
		c.Limits.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if c.Ping <= 0 {
		c.Ping = DefaultPing
	}
	if c.Ping < time.Second || c.Ping%time.Second != 0 {
		return fmt.Errorf("session: ping interval %v is not a whole number of seconds (hello announces seconds)", c.Ping)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = NopMetrics{}
	}
	if err := c.CommandRate.validate(); err != nil {
		return err
	}
	if err := validatePresence(c); err != nil {
		return err
	}
	return ValidateNamespaces(c.Namespaces)
}

// ValidateNamespaces checks namespace options without needing a node, so a
// configuration can be checked before anything starts.
func ValidateNamespaces(nss []Namespace) error {
	seen := map[string]bool{}
	for _, ns := range nss {
		if seen[ns.Name] {
			return fmt.Errorf("session: namespace %q configured twice", ns.Name)
		}
		seen[ns.Name] = true
		if ns.Name != "" && ValidateChannel(ns.Name) != nil || NamespaceOf(ns.Name+":x") != ns.Name {
			return fmt.Errorf("session: invalid namespace name %q", ns.Name)
		}
		if ns.HistorySize < 0 || ns.HistoryTTL < 0 {
			return fmt.Errorf("session: namespace %q: negative history size or TTL", ns.Name)
		}
		if ns.HistorySize > 0 && ns.HistoryTTL == 0 {
			return fmt.Errorf("session: namespace %q keeps history but has no history TTL", ns.Name)
		}
	}
	return nil
}

// Node is one WaterSpout process's channel machinery: sessions, the hub and
// the broker.
type Node struct {
	cfg        Config
	broker     Broker
	hub        *hub
	log        *slog.Logger
	metrics    Metrics
	namespaces map[string]Namespace

	// channelLimitLogged is when the last ErrChannelLimit was logged (Unix
	// nanoseconds), to log floods of them once a minute.
	channelLimitLogged atomic.Int64
	// brokerFailLog bounds the WARN lines of failed broker calls (see
	// brokerFailed); now is its clock, time.Now but in tests.
	brokerFailLog logBudget
	now           func() time.Time

	mu       sync.Mutex
	sessions map[*Session]struct{}
	// users indexes the open sessions by user (SetUser), so that an order
	// about one user (runControl) looks at that user's sessions, not at
	// every session of the node. Sessions without a user are not in it.
	users   map[string][]*Session
	drained chan struct{} // closed when sessions becomes empty during Shutdown
	closing bool

	leases pollLeases       // long-poll clients' presence between polls
	orders disconnectOrders // recent disconnect orders, for pollers between polls
}

// New returns a Node; it takes over the broker's handler.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, broker: cfg.Broker, hub: newHub(cfg.Broker), log: cfg.Logger, metrics: cfg.Metrics,
		namespaces: map[string]Namespace{"": DefaultNamespace},
		sessions:   make(map[*Session]struct{}),
		users:      make(map[string][]*Session),
		orders:     disconnectOrders{keep: cfg.PollLease},
		now:        time.Now,
	}
	for _, ns := range cfg.Namespaces {
		n.namespaces[ns.Name] = ns
	}
	cfg.Broker.SetHandler(brokerHandler{n})
	if c, ok := cfg.Broker.(Cluster); ok {
		c.SetClusterHandler(brokerHandler{n})
	}
	return n, nil
}

// Limits returns the limits announced to clients.
func (n *Node) Limits() Limits { return n.cfg.Limits }

// Ping returns the heartbeat interval.
func (n *Node) Ping() time.Duration { return n.cfg.Ping }

// Namespace returns the options that apply to ch.
func (n *Node) Namespace(ch string) Namespace {
	if ns, ok := n.namespaces[NamespaceOf(ch)]; ok {
		return ns
	}
	return n.namespaces[""]
}

// NewSession starts a session for a transport. The transport must call Close
// when the connection ends.
func (n *Node) NewSession(transport string) (*Session, error) {
	s := &Session{id: newID(), transport: transport, node: n}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return nil, DisconnectShutdown
	}
	n.sessions[s] = struct{}{}
	n.metrics.SessionOpened(transport)
	return s, nil
}

func (n *Node) forget(s *Session, d Disconnect) {
	n.mu.Lock()
	if _, ok := n.sessions[s]; !ok {
		n.mu.Unlock()
		return
	}
	delete(n.sessions, s)
	n.unindexLocked(s)
	n.metrics.SessionClosed(s.transport, d.Code)
	if n.closing && len(n.sessions) == 0 && n.drained != nil {
		close(n.drained)
		n.drained = nil
	}
	n.mu.Unlock()
	if f, ok := n.cfg.Authorizer.(Forgetter); ok {
		f.Forget(s)
	}
}

// index files open session s under user (SetUser calls it, under
// Session.mu, so that the index and the session agree).
func (n *Node) index(s *Session, user string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, open := n.sessions[s]; !open || s.indexedAs == user {
		return
	}
	n.unindexLocked(s)
	if user != "" {
		s.indexPos = int32(len(n.users[user]))
		n.users[user] = append(n.users[user], s)
	}
	s.indexedAs = user
}

// unindexLocked takes s out of the user index, in constant time however
// many sessions its user has (one subject shared by every page of a site).
// Node.mu must be held.
func (n *Node) unindexLocked(s *Session) {
	if s.indexedAs == "" {
		return
	}
	list := n.users[s.indexedAs]
	last := list[len(list)-1]
	list[s.indexPos] = last
	last.indexPos = s.indexPos
	list[len(list)-1] = nil
	list = list[:len(list)-1]
	if len(list) == 0 {
		delete(n.users, s.indexedAs)
	} else {
		n.users[s.indexedAs] = list
	}
	s.indexedAs = ""
}

// sessionsOf returns a copy of user's open sessions.
func (n *Node) sessionsOf(user string) []*Session {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.users[user])
}

// Forgetter is an Authorizer that keeps per-session state (a token's expiry
// timer); the node calls Forget once when a session closes.
type Forgetter interface {
	Forget(s *Session)
}

// SessionCount returns the number of open sessions.
func (n *Node) SessionCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.sessions)
}

// Ready reports whether the node can serve: not shutting down, broker healthy.
func (n *Node) Ready(ctx context.Context) error {
	n.mu.Lock()
	closing := n.closing
	n.mu.Unlock()
	if closing {
		return errors.New("shutting down")
	}
	if r, ok := n.broker.(Readier); ok {
		return r.Ready(ctx)
	}
	return nil
}

// Shutdown refuses new sessions, tells every session to reconnect elsewhere
// (DisconnectShutdown) and waits until their transports have closed them or
// ctx ends.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	n.closing = true
	var wait chan struct{}
	if len(n.sessions) > 0 {
		wait = make(chan struct{})
		n.drained = wait
	}
	all := make([]*Session, 0, len(n.sessions))
	for s := range n.sessions {
		all = append(all, s)
	}
	n.mu.Unlock()
	for _, s := range all {
		s.fail(DisconnectShutdown)
	}
	if wait == nil {
		return nil
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("session: shutdown with %d sessions open: %w", n.SessionCount(), ctx.Err())
	}
}

// Publish publishes data to ch with the namespace's history options. data
// must be valid JSON within limits. A repeated key returns the original
// publication with Duplicate set and delivers nothing.
func (n *Node) Publish(ctx context.Context, ch string, data json.RawMessage, key string) (PublishResult, error) {
	if err := ValidateChannel(ch); err != nil {
		return PublishResult{}, err
	}
	if len(data) > n.cfg.Limits.MaxMessageBytes {
		return PublishResult{}, &Error{413, fmt.Sprintf("data larger than %d bytes", n.cfg.Limits.MaxMessageBytes)}
	}
	// json.Valid accepts invalid UTF-8 inside strings, which browsers reject
	// in a WebSocket text frame by dropping the connection. The reasons are
	// the HTTP API's (server/decode.go), so a client is told the same thing
	// whichever way it publishes.
	switch {
	case len(data) == 0:
		return PublishResult{}, badRequest("data is required")
	case validJSONQuick(data):
		// The usual: checked whole in one pass, which the two checks below
		// would accept (FuzzScanJSONValue); they decide, and explain, the rest.
	case !ValidJSONText(data):
		return PublishResult{}, badRequest("data is not valid UTF-8")
	case !json.Valid(data):
		return PublishResult{}, badRequest("data is not valid JSON")
	}
	if len(key) > MaxKeyLen || !utf8.ValidString(key) {
		return PublishResult{}, badRequest("key is longer than %d bytes or not UTF-8", MaxKeyLen)
	}
	ns := n.Namespace(ch)
	res, err := n.broker.Publish(ctx, ch, data, PublishOptions{
		Key: key, HistorySize: ns.HistorySize, HistoryTTL: ns.HistoryTTL, KeyTTL: max(ns.HistoryTTL, MinKeyTTL),
	})
	if err != nil {
		return PublishResult{}, n.brokerFailed("publish", ch, err)
	}
	n.metrics.Published(res.Duplicate)
	return res, nil
}

// MaxKeyLen is the longest idempotency key accepted, in bytes.
const MaxKeyLen = 256

// History returns ch's retained publications after since (all retained when
// since is nil), at most limit of them.
func (n *Node) History(ctx context.Context, ch string, since *Position, limit int) (HistoryResult, error) {
	if err := ValidateChannel(ch); err != nil {
		return HistoryResult{}, err
	}
	if err := validatePosition(since); err != nil {
		return HistoryResult{}, err
	}
	res, err := n.broker.History(ctx, ch, HistoryQuery{Since: since, Limit: limit})
	if err != nil {
		return HistoryResult{}, n.brokerFailed("history", ch, err)
	}
	return res, nil
}

// brokerFailed is what a client is told when the broker's op on ch failed:
// ErrChannelLimit when the channel could not start (counted, and logged at
// most once a minute), else ErrUnavailable, the error logged. A broker that
// is down fails every publish, subscribe and history call, so the WARN
// lines are bounded (brokerFailLogBurst, then brokerFailLogRate a second;
// the rest at debug, and the next WARN line says suppressed=N): a batch to
// 1,000 channels while Redis was down wrote 1,000 lines.
func (n *Node) brokerFailed(op, ch string, err error) error {
	if errors.Is(err, ErrChannelLimit) {
		n.channelLimit(ch)
		return ErrChannelLimit
	}
	level, attrs := slog.LevelDebug, []any{"channel", ch, "err", err}
	// A call whose caller went away (the client closed the request) is no
	// news about the broker: it is logged at debug and spends nothing.
	if !errors.Is(err, context.Canceled) {
		if ok, suppressed := n.brokerFailLog.take(n.now(), brokerFailLogBurst, brokerFailLogRate); ok {
			level = slog.LevelWarn
			if suppressed > 0 {
				attrs = append(attrs, "suppressed", suppressed)
			}
		}
	}
	n.log.Log(context.Background(), level, "broker "+op+" failed", attrs...)
	return ErrUnavailable
}

// The bound on brokerFailed's WARN lines.
const (
	brokerFailLogBurst = 10
	brokerFailLogRate  = 1.0 // a second
)

func (n *Node) authorizeSubscribe(s *Session, ch, token string) error {
	ns := n.Namespace(ch)
	if n.cfg.Authorizer != nil {
		return n.cfg.Authorizer.AuthorizeSubscribe(s, ns, ch, token)
	}
	if !ns.Anonymous {
		return ErrPermissionDenied
	}
	return nil
}

func (n *Node) authorizePublish(s *Session, ch string) error {
	ns := n.Namespace(ch)
	if n.cfg.Authorizer != nil {
		return n.cfg.Authorizer.AuthorizePublish(s, ns, ch)
	}
	if !ns.ClientPublish {
		return ErrPermissionDenied
	}
	return nil
}

// ClientPublish publishes on behalf of a session's client, if allowed.
func (n *Node) ClientPublish(ctx context.Context, s *Session, ch string, data json.RawMessage, key string) (PublishResult, error) {
	if err := ValidateChannel(ch); err != nil {
		n.limited(LimitChannelName)
		return PublishResult{}, err
	}
	if err := n.authorizePublish(s, ch); err != nil {
		return PublishResult{}, channelError(ch, err)
	}
	return n.Publish(ctx, ch, data, key)
}

// brokerHandler routes broker deliveries into the hub.
type brokerHandler struct{ n *Node }

func (h brokerHandler) HandlePublication(p *Publication) { h.n.hub.broadcast(p) }
func (h brokerHandler) HandleGap(ch string)              { h.n.hub.gap(ch) }
