package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waterspout/waterspout/session"
)

// Config configures a Broker. Exactly one of URL, SentinelAddrs and
// ClusterAddrs says where Redis is.
type Config struct {
	// URL is redis://[[user]:password@]host:port/db, or rediss:// for TLS.
	URL string
	// SentinelAddrs are host:port of Redis Sentinels that monitor the master
	// named MasterName; the broker follows the master through failovers.
	SentinelAddrs []string
	MasterName    string
	// ClusterAddrs are host:port of some nodes of a Redis Cluster (7 or
	// later: delivery uses sharded pub/sub).
	ClusterAddrs []string
	// Username and Password authenticate to the Redis servers found through
	// Sentinel or Cluster (a URL carries its own); SentinelPassword to the
	// Sentinels themselves.
	Username, Password, SentinelPassword string
	// AllowEviction lets the broker report ready while Redis may evict its
	// keys (maxmemory with a policy other than noeviction). Evicted keys
	// cost recovered:false and repeated idempotency keys; see
	// docs/OPERATIONS.md.
	AllowEviction bool
	// Prefix starts every key and pub/sub channel name. Default "ws".
	Prefix string
	// IdleChannelTTL is how long a channel's epoch and offset are kept after
	// it started or was last published to, once its history and keys have
	// expired; a node with subscribers on the channel keeps extending it
	// (keepalive.go), reads do not. Default 1 hour, as the memory broker.
	IdleChannelTTL time.Duration
	// MaxChannelStarts caps the channels this node starts in Redis within
	// IdleChannelTTL: a publish, subscribe or history read of a channel
	// Redis holds no position for writes one that lives at least that long.
	// Past the cap such a call fails with session.ErrChannelLimit until
	// older starts leave the window, while channels Redis holds go on
	// working. Default session.DefaultMaxBrokerChannels; the server sets it
	// from --max-server-channels. See starts.go.
	MaxChannelStarts int
	// Logger receives connection losses and recoveries. Default slog.Default().
	Logger *slog.Logger
	// Heartbeat is how often the node refreshes its liveness in Redis; a
	// node silent for 3 heartbeats is dead and its presence entries are
	// purged by the others. Default DefaultHeartbeat (see presence.go).
	Heartbeat time.Duration

	// pingEvery is how long the pub/sub connection may stay silent before
	// it is probed with a PING; tests shorten it.
	pingEvery time.Duration
	// now is the clock of the start cap; tests set it. Default time.Now.
	now func() time.Time
}

// Default settings.
const (
	DefaultPrefix         = "ws"
	DefaultIdleChannelTTL = time.Hour
	defaultPingEvery      = 5 * time.Second
	// subscribeTimeout bounds Subscribe when the caller's context does not.
	subscribeTimeout = 5 * time.Second
)

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	n := 0
	for _, set := range []bool{c.URL != "", len(c.SentinelAddrs) > 0, len(c.ClusterAddrs) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("redis: config needs a URL, Sentinel addresses or Cluster addresses")
	case n > 1:
		return errors.New("redis: config takes only one of a URL, Sentinel addresses and Cluster addresses")
	case len(c.SentinelAddrs) > 0 && c.MasterName == "":
		return errors.New("redis: Sentinel needs the master's name")
	case len(c.SentinelAddrs) == 0 && c.MasterName != "":
		return errors.New("redis: a master name needs Sentinel addresses")
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.IdleChannelTTL <= 0 {
		c.IdleChannelTTL = DefaultIdleChannelTTL
	}
	if c.MaxChannelStarts < 0 {
		return errors.New("redis: MaxChannelStarts must not be negative")
	}
	if c.MaxChannelStarts == 0 {
		c.MaxChannelStarts = session.DefaultMaxBrokerChannels
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.pingEvery <= 0 {
		c.pingEvery = defaultPingEvery
	}
	return nil
}

// Broker is a session.Broker backed by one Redis server, shared by every
// WaterSpout node that points at it.
type Broker struct {
	client     goredis.UniversalClient
	cluster    bool
	publish    string // the publish command in the scripts: PUBLISH, or SPUBLISH in a cluster
	ps         *goredis.PubSub
	prefix     string // "<Prefix>:"
	pubPrefix  string // "<Prefix>:pub:"
	idleTTL    time.Duration
	pingEvery  time.Duration
	log        *slog.Logger
	handler    atomic.Pointer[handlerRef]
	allowEvict bool
	starts     *starts // the cap on channels this node starts

	// inspectMu serializes inspections; known is the scripts' list of
	// server identities (see generationLua) and servers what was learned.
	inspectMu sync.Mutex
	known     atomic.Pointer[string]
	servers   atomic.Pointer[[]serverInfo]
	// psConnects counts the pub/sub connection's reconnects; lastID and
	// lastConnects are the master's identity and psConnects at the last
	// inspection (guarded by inspectMu), to tell a connection left on an
	// old master (see switchPubSub).
	psConnects   atomic.Uint64
	psDown       atomic.Bool // the receive loop is reconnecting
	lastID       string
	lastConnects uint64

	// cmdMu orders SUBSCRIBE and UNSUBSCRIBE on the pub/sub connection with
	// the changes to subs they go with, and guards replacing ps. Lock order:
	// inspectMu, cmdMu, mu.
	cmdMu sync.Mutex

	mu       sync.Mutex
	subs     map[string]*subscription // by channel name
	barriers map[string]chan struct{} // closed on the PONG of a sync, by its payload
	lost     chan struct{}            // closed, and replaced, when the pub/sub connection is lost
	refusals uint64                   // error replies read from the pub/sub connection

	// shards are a cluster's sharded pub/sub connections, by master
	// address; guarded by mu. shardsWG counts their receivers.
	shards   map[string]*shard
	shardsWG sync.WaitGroup
	// callMu makes a cluster's handler calls for one channel one at a time;
	// a channel's lock is chosen by callLock (see clusterGap).
	callMu [callStripes]sync.Mutex

	closing     chan struct{}
	closeOnce   sync.Once
	keepAliveWG sync.WaitGroup // keepAliveLoop (keepalive.go)
	done        chan struct{}  // closed when the receive loop has returned

	fleet fleet // presence and control (presence.go)
}

type handlerRef struct{ h session.BrokerHandler }

var (
	_ session.Broker  = (*Broker)(nil)
	_ session.Readier = (*Broker)(nil)
)

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("redis: broker closed")

var errRefused = errors.New("refused by Redis (check the user's channel permissions)")

// New returns a Broker and starts its pub/sub receiver. It does not wait for
// Redis: call Ready to check the connection.
func New(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	routeGoRedisLogs(cfg.Logger)
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	_, cluster := client.(*goredis.ClusterClient)
	b := &Broker{
		client:     client,
		cluster:    cluster,
		publish:    "PUBLISH",
		allowEvict: cfg.AllowEviction,
		starts:     newStarts(cfg.MaxChannelStarts, cfg.IdleChannelTTL, cfg.now),
		prefix:     cfg.Prefix + ":",
		pubPrefix:  cfg.Prefix + ":pub:",
		idleTTL:    cfg.IdleChannelTTL,
		pingEvery:  cfg.pingEvery,
		log:        cfg.Logger,
		subs:       make(map[string]*subscription),
		barriers:   make(map[string]chan struct{}),
		lost:       make(chan struct{}),
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
	}
	b.fleet.init(cfg.Heartbeat)
	b.keepAliveWG.Add(1)
	go b.keepAliveLoop()
	if cluster {
		// One sharded pub/sub connection per master, opened on demand (see
		// cluster.go).
		b.publish = "SPUBLISH"
		b.shards = make(map[string]*shard)
		close(b.done)
		return b, nil
	}
	b.ps = b.newPubSub()
	go b.receive()
	return b, nil
}

// newClient makes the go-redis client the configuration asks for.
//
// A command whose reply was lost may have run: go-redis would send it
// again, and a second run of the publish script is a second publication (a
// duplicate at a new offset). So retries are off: Publish reports the error
// and the publisher retries with an idempotency key. Failed dials are still
// retried, as nothing was sent.
func newClient(cfg Config) (goredis.UniversalClient, error) {
	switch {
	case len(cfg.SentinelAddrs) > 0:
		return goredis.NewFailoverClient(&goredis.FailoverOptions{
			MasterName:       cfg.MasterName,
			SentinelAddrs:    cfg.SentinelAddrs,
			SentinelPassword: cfg.SentinelPassword,
			Username:         cfg.Username,
			Password:         cfg.Password,
			MaxRetries:       -1,
		}), nil
	case len(cfg.ClusterAddrs) > 0:
		return goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs:    cfg.ClusterAddrs,
			Username: cfg.Username,
			Password: cfg.Password,
			// Redirections (MOVED, ASK) are answers, not lost replies: the
			// script did not run, so following them is safe.
			MaxRedirects: 8,
			MaxRetries:   -1,
		}), nil
	}
	opt, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		// The URL may hold a password: do not repeat it.
		return nil, fmt.Errorf("redis: parse URL: %w", err)
	}
	opt.MaxRetries = -1
	return goredis.NewClient(opt), nil
}

// Close stops the receiver and closes the connections. Calls in flight fail.
func (b *Broker) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.closeCluster()
		close(b.closing)
		b.keepAliveWG.Wait()
		// Under cmdMu, so that a switchPubSub either finished (and this
		// closes its connection) or sees closing and does nothing.
		b.cmdMu.Lock()
		ps := b.ps
		b.cmdMu.Unlock()
		if ps != nil {
			err = ps.Close()
		}
		<-b.done
		err = errors.Join(err, b.closeShards())
		err = errors.Join(err, b.client.Close())
	})
	return err
}

// SetHandler implements session.Broker.
func (b *Broker) SetHandler(h session.BrokerHandler) { b.handler.Store(&handlerRef{h}) }

func (b *Broker) handle() session.BrokerHandler {
	if r := b.handler.Load(); r != nil {
		return r.h
	}
	return nil
}

// Ready implements session.Readier. It inspects the Redis masters again
// (so a restart, failover or configuration change is seen by the next
// probe) and fails when one may evict WaterSpout's keys, unless
// AllowEviction is set.
func (b *Broker) Ready(ctx context.Context) error {
	infos, err := b.inspectAll(ctx)
	if err != nil {
		return err
	}
	for _, s := range infos {
		if s.evicts() && !b.allowEvict {
			return fmt.Errorf("redis %s: maxmemory-policy %s may evict WaterSpout's keys "+
				"(history, idempotency keys, epochs); set it to noeviction, or accept the "+
				"loss with --redis-allow-eviction", s.addrOrID(), s.policy)
		}
	}
	return nil
}

// Key names. The channel is a hash tag, so one channel's keys live in one
// cluster slot; channel names cannot contain braces.
func (b *Broker) metaKey(ch string) string    { return b.prefix + "{" + ch + "}:meta" }
func (b *Broker) historyKey(ch string) string { return b.prefix + "{" + ch + "}:history" }
func (b *Broker) idemKey(ch, key string) string {
	return b.prefix + "{" + ch + "}:key:" + key
}

// pubChannel is the pub/sub channel of ch. In a cluster it is a shard
// channel with ch as its hash tag, so that the script can SPUBLISH to the
// slot of the keys it touches.
func (b *Broker) pubChannel(ch string) string {
	if b.cluster {
		return b.pubPrefix + "{" + ch + "}"
	}
	return b.pubPrefix + ch
}

// lineageKey is the hash naming the data set's generation (see
// generationLua). A script may only touch keys of one cluster slot, so a
// cluster has one lineage hash per slot, named with a hash tag that falls in
// the slot of ch; a single server has one.
func (b *Broker) lineageKey(ch string) string {
	if b.cluster {
		return b.prefix + "{" + slotTag(keySlot(ch)) + "}:lineage"
	}
	return b.prefix + "lineage"
}

// Publish implements session.Broker with one script (see scripts.go).
func (b *Broker) Publish(ctx context.Context, ch string, data json.RawMessage, opts session.PublishOptions) (session.PublishResult, error) {
	keys := []string{b.metaKey(ch), b.historyKey(ch), b.lineageKey(ch)}
	if opts.Key != "" {
		keys = append(keys, b.idemKey(ch, opts.Key))
	}
	historyTTL := millis(opts.HistoryTTL)
	keyTTL := max(millis(opts.KeyTTL), historyTTL)
	// The meta hash must outlive the history and the keys, so that a client
	// at the top still recovers after the history expired and a repeated
	// key never meets a newer epoch. History without a TTL keeps it forever.
	metaTTL := max(historyTTL, keyTTL, millis(b.idleTTL))
	if opts.HistorySize > 0 && historyTTL == 0 {
		metaTTL = 0
	}
	mayStart := b.starts.Allowed()
	reply, err := b.runScript(ctx, publishScript, keys, func(known string) []any {
		return []any{b.pubChannel(ch), []byte(data), opts.Key, max(opts.HistorySize, 0),
			historyTTL, keyTTL, metaTTL, session.NewEpoch(), known, session.NewEpoch(), b.publish, flag(mayStart)}
	})
	if err != nil {
		return session.PublishResult{}, fmt.Errorf("redis: publish to %q: %w", ch, startRefused(err))
	}
	if len(reply) != 3 {
		return session.PublishResult{}, fmt.Errorf("redis: publish to %q: unexpected reply of %d elements", ch, len(reply))
	}
	if started, _ := reply[2].(int64); started == 1 {
		b.starts.Started()
	}
	dup, _ := reply[0].(int64)
	packed, _ := reply[1].(string)
	p, err := decodePublication(ch, packed)
	if err != nil {
		return session.PublishResult{}, fmt.Errorf("redis: publish to %q: %w", ch, err)
	}
	return session.PublishResult{Publication: p, Duplicate: dup == 1}, nil
}

// History implements session.Broker with one script (see scripts.go).
func (b *Broker) History(ctx context.Context, ch string, q session.HistoryQuery) (session.HistoryResult, error) {
	hasSince, sinceEpoch, sinceOffset := "0", "", "0"
	if q.Since != nil {
		hasSince, sinceEpoch, sinceOffset = "1", q.Since.Epoch, strconv.FormatUint(q.Since.Offset, 10)
	}
	keys := []string{b.metaKey(ch), b.historyKey(ch), b.lineageKey(ch)}
	mayStart := b.starts.Allowed()
	reply, err := b.runScript(ctx, historyScript, keys, func(known string) []any {
		return []any{session.NewEpoch(), millis(b.idleTTL), hasSince, sinceEpoch, sinceOffset, q.Limit, known,
			session.NewEpoch(), flag(mayStart)}
	})
	if err != nil {
		return session.HistoryResult{}, fmt.Errorf("redis: history of %q: %w", ch, startRefused(err))
	}
	res, started, err := parseHistory(ch, reply)
	if err != nil {
		return session.HistoryResult{}, fmt.Errorf("redis: history of %q: %w", ch, err)
	}
	if started {
		b.starts.Started()
	}
	return res, nil
}

// flag is a script's boolean argument.
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// errStartRefused is in the error reply of a script asked to start no
// channel (see starts.go) for a channel Redis holds no position for.
const errStartRefused = "WSNOSTART"

// startRefused turns a script's refusal to start a channel into
// session.ErrChannelLimit.
func startRefused(err error) error {
	if strings.Contains(err.Error(), errStartRefused) {
		return session.ErrChannelLimit
	}
	return err
}

// runScript runs a script of scripts.go with the arguments args returns for
// the known server identities. A script that finds itself on a server the
// broker has not inspected (Redis restarted or failed over) answers {-1 or
// "", identity} having written nothing: the broker inspects the servers and
// runs it again.
func (b *Broker) runScript(ctx context.Context, s *goredis.Script, keys []string, args func(known string) []any) ([]any, error) {
	for attempt := 0; ; attempt++ {
		known, err := b.knownIDs(ctx)
		if err != nil {
			return nil, err
		}
		reply, err := s.Run(ctx, b.client, keys, args(known)...).Slice()
		if err != nil {
			return nil, err
		}
		if len(reply) != 2 || (reply[0] != int64(-1) && reply[0] != "") {
			return reply, nil
		}
		if attempt == 2 {
			return nil, fmt.Errorf("server %v was not among the inspected servers", reply[1])
		}
		if _, err := b.inspectAll(ctx); err != nil {
			return nil, err
		}
	}
}

// parseHistory reads historyScript's reply, and whether it started the
// channel.
func parseHistory(ch string, reply []any) (session.HistoryResult, bool, error) {
	if len(reply) < 4 {
		return session.HistoryResult{}, false, fmt.Errorf("unexpected reply of %d elements", len(reply))
	}
	epoch, _ := reply[0].(string)
	top, _ := reply[1].(int64)
	rec, _ := reply[2].(int64)
	started, _ := reply[3].(int64)
	if !session.ValidEpoch(epoch) || top < 0 {
		return session.HistoryResult{}, false, errors.New("malformed channel position")
	}
	res := session.HistoryResult{Top: session.Position{Epoch: epoch, Offset: uint64(top)}, Recoverable: rec == 1}
	if n := len(reply) - 4; n > 0 {
		res.Publications = make([]*session.Publication, 0, n)
	}
	for _, r := range reply[4:] {
		s, _ := r.(string)
		p, err := decodePublication(ch, s)
		if err != nil {
			return session.HistoryResult{}, false, err
		}
		res.Publications = append(res.Publications, p)
	}
	return res, started == 1, nil
}

// millis converts a duration to whole milliseconds for Redis, rounding a
// positive duration under a millisecond up rather than to "no expiry".
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}

// go-redis writes its own lines (failed dials, pool errors) through one
// process-wide logger, to stderr by default. They go into the first broker's
// slog logger instead, at debug level: the broker itself reports connection
// losses and recoveries at warn.
var goRedisLogs sync.Once

func routeGoRedisLogs(log *slog.Logger) {
	goRedisLogs.Do(func() { goredis.SetLogger(slogPrintf{log}) })
}

type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug("go-redis: " + fmt.Sprintf(format, v...))
}
