package server

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/server/auth"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
	"github.com/waterspout/waterspout/transports/poll"
)

// Defaults of the settings that have one.
const (
	DefaultAddr            = "127.0.0.1:8080"
	DefaultBroker          = "memory"
	DefaultPollTimeout     = 25 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultLogLevel        = "info"
	DefaultLogFormat       = "text"
	DefaultWriteTimeout    = transports.DefaultWriteTimeout
	DefaultMaxBatchBytes   = 1 << 20
)

// Config is everything `waterspout serve` can be told. It is JSON-tagged so
// that one config file can hold all of it; durations are written as Go
// duration strings ("25s", "10m").
type Config struct {
	// Addr is the listen address, host:port.
	Addr string `json:"addr"`
	// APIKeys authenticate backends on /api/* (Authorization: Bearer <key>).
	// Without any, the API is open, and the server refuses to listen beyond
	// loopback.
	APIKeys []string `json:"apiKeys"`
	// AllowedOrigins lists the browser origins (scheme://host[:port], or
	// scheme://*.domain for its subdomains) that may connect and call the
	// API from a page. Same-origin requests always pass; "*" allows any.
	AllowedOrigins []string `json:"allowedOrigins"`
	// Broker is "memory" (the embedded default) or "redis".
	Broker   string `json:"broker"`
	RedisURL string `json:"redisURL"`
	// RedisSentinels (host:port, with RedisMaster, the monitored master's
	// name) or RedisCluster (host:port of some cluster nodes) replace
	// RedisURL for a replicated Redis; exactly one of the three is set.
	RedisSentinels []string `json:"redisSentinels"`
	RedisMaster    string   `json:"redisMaster"`
	RedisCluster   []string `json:"redisCluster"`
	// RedisUsername and RedisPassword authenticate to the Redis servers
	// found through Sentinel or Cluster; RedisSentinelPassword to the
	// Sentinels. A URL carries its own.
	RedisUsername         string `json:"redisUsername"`
	RedisPassword         string `json:"redisPassword"`
	RedisSentinelPassword string `json:"redisSentinelPassword"`
	// RedisAllowEviction lets a node report ready while Redis may evict its
	// keys (maxmemory with a policy other than noeviction).
	RedisAllowEviction bool `json:"redisAllowEviction"`
	// Namespaces configure channels by prefix (history, client publish…).
	Namespaces []session.Namespace `json:"namespaces"`
	// Presence bounds the presence of namespaces that keep it.
	Presence PresenceLimits `json:"presence"`
	// Limits announced to clients; zero fields take session's defaults.
	Limits session.Limits `json:"limits"`
	// MaxBatchBytes bounds a POST /api/batch body; a larger one is answered
	// 413. The config file holds it beside the other limits, as
	// "limits.maxBatchBytes" (see limitsJSON), but it is the server's own:
	// clients are not told it. Zero: DefaultMaxBatchBytes, or one largest
	// message and its envelope (bodyOverhead) when that is more. It must be
	// at least Limits.MaxMessageBytes and batchEnvelope, so that one largest
	// message fits in a batch.
	MaxBatchBytes int `json:"-"`
	// MaxServerChannels caps the channel states the memory broker holds at
	// once (zero: session.DefaultMaxBrokerChannels). At the cap a subscribe
	// or publish that would start a new channel is refused with 503 while
	// existing channels go on working. On the Redis broker, which keeps no
	// count of the channels in Redis, it caps the channels this node starts
	// there within the idle channel TTL (redis.Config.MaxChannelStarts).
	MaxServerChannels int `json:"maxServerChannels"`
	// RateLimits bound connections and connects per client address,
	// publishes per API key and commands per session.
	RateLimits RateLimits `json:"rateLimits"`
	// Tokens configures connection and publisher tokens (JWT).
	Tokens TokensConfig `json:"tokens"`
	// Admin configures the operator's live view at /admin, off without a
	// secret.
	Admin AdminConfig `json:"admin"`
	// Ping is the heartbeat interval announced in hello.
	Ping time.Duration `json:"ping"`
	// PollTimeout is how long a long-poll request is held without news.
	PollTimeout time.Duration `json:"pollTimeout"`
	// PollDetach is how long a held long-poll waits on its HTTP request
	// before it detaches from net/http, to wait at about 9 KB instead of 30
	// (see transports/poll Options.Detach).
	PollDetach time.Duration `json:"pollDetach"`
	// WriteTimeout bounds every write to a client.
	WriteTimeout time.Duration `json:"writeTimeout"`
	// ShutdownTimeout bounds a graceful shutdown.
	ShutdownTimeout time.Duration `json:"shutdownTimeout"`
	// StallTimeout is how long data sent to a client may wait for the
	// client to acknowledge any of it before the connection is dropped
	// (Linux: TCP_USER_TIMEOUT on every accepted connection; see
	// netconn.StallBound). It is what ends a client that stopped reading
	// without closing on SSE, long-polling and SockJS, whose protocols have
	// no reply to prove the client alive. Negative: the kernel's default.
	StallTimeout time.Duration `json:"stallTimeout"`
	// UnsentBytes bounds the bytes not yet sent that the kernel keeps for
	// one connection (Linux: TCP_NOTSENT_LOWAT); beyond it, data waits in
	// the session's bounded queue. NoLimit (-1): the kernel's default.
	UnsentBytes int `json:"unsentBytes"`
	// TrustedProxies are the CIDRs (or single addresses) of reverse proxies
	// whose X-Forwarded-For is believed. Empty: the peer address is the
	// client address.
	TrustedProxies []string `json:"trustedProxies"`
	// SockJSStickyCookie makes the SockJS endpoint set a JSESSIONID cookie
	// for load balancers that pin clients by it. SockJS keeps a session on
	// one node across HTTP requests, so with several nodes it needs sticky
	// sessions (by this cookie or by client address); the other transports
	// do not.
	SockJSStickyCookie bool `json:"sockjsStickyCookie"`
	// LogLevel is debug, info, warn or error; LogFormat is text or json.
	// They are used when Logger is nil (and by the command to build it).
	LogLevel  string `json:"logLevel"`
	LogFormat string `json:"logFormat"`

	// Version names the running binary on the admin page (the command
	// sets what `waterspout version` prints). Empty: the module's build
	// information.
	Version string `json:"-"`
	// Logger receives every log line. Default: built from LogLevel and
	// LogFormat, writing to standard error.
	Logger *slog.Logger `json:"-"`
	// ClientFS holds the built client bundles (waterspout.js, .mjs,
	// .legacy.js) at its root, served under /client/. Nil serves nothing.
	ClientFS fs.FS `json:"-"`
}

// Defaults returns a Config holding every default.
func Defaults() Config {
	return Config{
		Addr:            DefaultAddr,
		Broker:          DefaultBroker,
		Ping:            session.DefaultPing,
		PollTimeout:     DefaultPollTimeout,
		PollDetach:      poll.DefaultDetach,
		WriteTimeout:    DefaultWriteTimeout,
		ShutdownTimeout: DefaultShutdownTimeout,
		StallTimeout:    netconn.DefaultStallTimeout,
		UnsentBytes:     netconn.DefaultUnsentBytes,
		LogLevel:        DefaultLogLevel,
		LogFormat:       DefaultLogFormat,
		RateLimits:      defaultRateLimits(),
		Tokens:          TokensConfig{Leeway: auth.DefaultLeeway},
	}
}

// Floors of the stall bound: a shorter timeout would cut healthy clients
// behind an ordinary retransmission, and fewer unsent bytes than a few
// segments would make every write wait for acknowledgements.
const (
	minStallTimeout = time.Second
	minUnsentBytes  = 4 << 10
)

// stallBound is the netconn.StallBound of c (validated).
func (c *Config) stallBound() netconn.StallBound {
	return netconn.StallBound{Timeout: max(c.StallTimeout, 0), Unsent: max(c.UnsentBytes, 0)}
}

// maxPollTimeout keeps a held poll well under common proxy idle timeouts (60 s).
const maxPollTimeout = 55 * time.Second

// Validate fills defaults for zero fields and checks the configuration. It
// refuses an API without keys on anything but a loopback address: a server
// reachable from the network never accepts an unauthenticated publish.
func (c *Config) Validate() error {
	d := Defaults()
	c.Addr = cmp.Or(c.Addr, d.Addr)
	c.Broker = cmp.Or(c.Broker, d.Broker)
	c.Ping = cmp.Or(c.Ping, d.Ping)
	c.PollTimeout = cmp.Or(c.PollTimeout, d.PollTimeout)
	c.PollDetach = cmp.Or(c.PollDetach, d.PollDetach)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, d.WriteTimeout)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
	c.StallTimeout = cmp.Or(c.StallTimeout, d.StallTimeout)
	c.UnsentBytes = cmp.Or(c.UnsentBytes, d.UnsentBytes)
	c.LogLevel = cmp.Or(c.LogLevel, d.LogLevel)
	c.LogFormat = cmp.Or(c.LogFormat, d.LogFormat)
	c.Tokens.Leeway = cmp.Or(c.Tokens.Leeway, d.Tokens.Leeway)

	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("invalid listen address %q: %w", c.Addr, err)
	}
	for i, k := range c.APIKeys {
		if err := auth.CheckAPIKey(k); err != nil {
			return fmt.Errorf("api key #%d %w", i+1, err)
		}
	}
	if len(c.APIKeys) == 0 && !c.Tokens.configured() && !isLoopbackHost(host) {
		return fmt.Errorf("refusing to listen on %s without --api-key (or token keys, for publisher tokens): the publish API would be open to the network", c.Addr)
	}
	if err := c.Tokens.validate(); err != nil {
		return err
	}
	if err := c.RateLimits.validate(); err != nil {
		return err
	}
	if _, err := c.Admin.secret(); err != nil {
		return err
	}
	if _, err := parseOrigins(c.AllowedOrigins); err != nil {
		return err
	}
	switch c.Broker {
	case "memory":
	case "redis":
		rc := c.redisConfig()
		if err := rc.Validate(); err != nil {
			return fmt.Errorf("broker redis: %w (use --redis-url, --redis-sentinel with --redis-master, or --redis-cluster)", err)
		}
	default:
		return fmt.Errorf("unknown broker %q (want memory or redis)", c.Broker)
	}
	if c.Ping < time.Second {
		return fmt.Errorf("ping interval %v is under a second", c.Ping)
	}
	if c.PollTimeout < time.Second || c.PollTimeout > maxPollTimeout {
		return fmt.Errorf("poll timeout %v is outside 1s..%v", c.PollTimeout, maxPollTimeout)
	}
	if c.PollDetach < time.Millisecond {
		return fmt.Errorf("poll detach %v is under a millisecond", c.PollDetach)
	}
	if c.WriteTimeout < 0 || c.ShutdownTimeout < 0 {
		return errors.New("write and shutdown timeouts must be positive")
	}
	if c.StallTimeout > 0 && c.StallTimeout < minStallTimeout {
		return fmt.Errorf("stall timeout %v is under %v (negative turns it off)", c.StallTimeout, minStallTimeout)
	}
	if c.UnsentBytes != NoLimit && c.UnsentBytes < minUnsentBytes {
		return fmt.Errorf("unsent bytes %d is under %d (-1 turns the bound off)", c.UnsentBytes, minUnsentBytes)
	}
	if c.Limits.MaxMessageBytes < 0 || c.Limits.MaxChannels < 0 || c.Limits.MaxQueueBytes < 0 || c.MaxServerChannels < 0 ||
		c.MaxBatchBytes < 0 {
		return errors.New("limits must not be negative")
	}
	if maxMessage := cmp.Or(c.Limits.MaxMessageBytes, session.DefaultMaxMessageBytes); c.maxBatchBytes() < maxMessage+batchEnvelope {
		return fmt.Errorf("limits.maxBatchBytes %d is under limits.maxMessageBytes %d and %d bytes for the envelope: a batch body must hold at least one largest message",
			c.MaxBatchBytes, maxMessage, batchEnvelope)
	}
	if _, err := parseProxies(c.TrustedProxies); err != nil {
		return err
	}
	if err := c.Presence.validate(); err != nil {
		return err
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("unknown log format %q (want text or json)", c.LogFormat)
	}
	return nil
}

// batchEnvelope is what a batch of one publication needs beyond its data:
// {"publications":[{"channel":…,"data":…,"key":…}]} with the longest
// channel name and key (255 and 256 bytes) and their names, about 570
// bytes, rounded up. TestBatchOfOneLargestFits holds it to that.
const batchEnvelope = 1 << 10

// maxBatchBytes is MaxBatchBytes, or its default when zero: 1 MiB, or one
// largest message and its envelope when that is more.
func (c *Config) maxBatchBytes() int {
	if c.MaxBatchBytes > 0 {
		return c.MaxBatchBytes
	}
	return max(DefaultMaxBatchBytes, cmp.Or(c.Limits.MaxMessageBytes, session.DefaultMaxMessageBytes)+bodyOverhead)
}

// isLoopbackHost reports whether a listen host only accepts local
// connections. An empty host (":8080") listens everywhere.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parseProxies turns CIDRs or single addresses into prefixes.
func parseProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither a CIDR nor an address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// duration is a time.Duration written in JSON as a duration string.
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: write it as a string such as \"25s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = duration(v)
	return nil
}

// namespaceJSON is session.Namespace with a readable history TTL.
type namespaceJSON struct {
	Name          string   `json:"name"`
	HistorySize   int      `json:"historySize"`
	HistoryTTL    duration `json:"historyTTL"`
	Anonymous     bool     `json:"anonymous"`
	ClientPublish bool     `json:"clientPublish"`
	Presence      bool     `json:"presence"`
	JoinLeave     bool     `json:"joinLeave"`
}

func toNamespacesJSON(in []session.Namespace) []namespaceJSON {
	if in == nil {
		return nil
	}
	out := make([]namespaceJSON, len(in))
	for i, ns := range in {
		out[i] = namespaceJSON{ns.Name, ns.HistorySize, duration(ns.HistoryTTL), ns.Anonymous, ns.ClientPublish,
			ns.Presence, ns.JoinLeave}
	}
	return out
}

func fromNamespacesJSON(in []namespaceJSON) []session.Namespace {
	if in == nil {
		return nil
	}
	out := make([]session.Namespace, len(in))
	for i, ns := range in {
		out[i] = session.Namespace{Name: ns.Name, HistorySize: ns.HistorySize, HistoryTTL: time.Duration(ns.HistoryTTL),
			Anonymous: ns.Anonymous, ClientPublish: ns.ClientPublish, Presence: ns.Presence, JoinLeave: ns.JoinLeave}
	}
	return out
}

// configJSON shadows Config's durations and namespaces with their readable
// forms; the embedded pointer carries every other field.
type configJSON struct {
	*configPlain
	Ping            duration        `json:"ping"`
	PollTimeout     duration        `json:"pollTimeout"`
	PollDetach      duration        `json:"pollDetach"`
	WriteTimeout    duration        `json:"writeTimeout"`
	ShutdownTimeout duration        `json:"shutdownTimeout"`
	StallTimeout    duration        `json:"stallTimeout"`
	Namespaces      []namespaceJSON `json:"namespaces"`
	Limits          limitsJSON      `json:"limits"`
}

// limitsJSON is the "limits" section: the limits announced to clients
// (session.Limits, which the hello frame carries) and, beside them, the
// server's own MaxBatchBytes. Both point into the Config.
type limitsJSON struct {
	*session.Limits
	MaxBatchBytes *int `json:"maxBatchBytes"`
}

type configPlain Config

func (c *Config) toJSON() configJSON {
	return configJSON{
		configPlain: (*configPlain)(c),
		Ping:        duration(c.Ping), PollTimeout: duration(c.PollTimeout), PollDetach: duration(c.PollDetach),
		WriteTimeout: duration(c.WriteTimeout), ShutdownTimeout: duration(c.ShutdownTimeout),
		StallTimeout: duration(c.StallTimeout),
		Namespaces:   toNamespacesJSON(c.Namespaces),
		Limits:       limitsJSON{&c.Limits, &c.MaxBatchBytes},
	}
}

// MarshalJSON writes the config file form.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.toJSON()) }

// UnmarshalJSON reads the config file form over c: fields the document does
// not name keep their value, so a file overlays the defaults. Unknown fields
// are an error, so a misspelt setting is not silently ignored.
func (c *Config) UnmarshalJSON(b []byte) error {
	aux := c.toJSON()
	if err := checkKeyCase(b, reflect.TypeOf(aux), ""); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return configProblem(err, b)
	}
	if !session.JSONEnded(dec) {
		return errors.New("trailing data after the config object")
	}
	c.Ping, c.PollTimeout, c.PollDetach = time.Duration(aux.Ping), time.Duration(aux.PollTimeout), time.Duration(aux.PollDetach)
	c.WriteTimeout, c.ShutdownTimeout = time.Duration(aux.WriteTimeout), time.Duration(aux.ShutdownTimeout)
	c.StallTimeout = time.Duration(aux.StallTimeout)
	c.Namespaces = fromNamespacesJSON(aux.Namespaces)
	return nil
}

// PresenceLimits bound presence (config file "presence"); zero fields take
// session's defaults.
type PresenceLimits struct {
	// MaxClients is the most presence entries a channel may hold; a
	// subscribe beyond it is refused with error 429.
	MaxClients int `json:"maxClients"`
	// JoinLeaveLimit: join and leave frames are sent only while a channel
	// holds at most this many presence entries.
	JoinLeaveLimit int `json:"joinLeaveLimit"`
	// ListLimit is the most entries the `presence` command lists; a channel
	// with more is refused with error 413 (presence_stats and
	// GET /api/presence still answer).
	ListLimit int `json:"listLimit"`
	// PollLease is how long a long-poll client stays listed after a poll
	// ends without its next poll arriving; 0 is pollTimeout + 10 s
	// (pollLeaseGrace).
	PollLease time.Duration `json:"pollLease"`
}

// pollLeaseGrace is the default poll lease beyond the poll timeout: time
// for a client's next poll to arrive after an answer, on a slow network.
const pollLeaseGrace = 10 * time.Second

// pollLease is the lease the node uses for a poll timeout.
func (p PresenceLimits) pollLease(pollTimeout time.Duration) time.Duration {
	if p.PollLease > 0 {
		return p.PollLease
	}
	return pollTimeout + pollLeaseGrace
}

func (p PresenceLimits) validate() error {
	if p.MaxClients < 0 || p.JoinLeaveLimit < 0 || p.ListLimit < 0 || p.PollLease < 0 {
		return errors.New("presence limits must not be negative")
	}
	return nil
}

// presenceLimitsJSON is PresenceLimits with a readable poll lease.
type presenceLimitsJSON struct {
	*presenceLimitsPlain
	PollLease duration `json:"pollLease"`
}

type presenceLimitsPlain PresenceLimits

// MarshalJSON writes the config file form.
func (p PresenceLimits) MarshalJSON() ([]byte, error) {
	return json.Marshal(presenceLimitsJSON{(*presenceLimitsPlain)(&p), duration(p.PollLease)})
}

// UnmarshalJSON reads the config file form over p; unknown fields are an
// error, as in Config.
func (p *PresenceLimits) UnmarshalJSON(b []byte) error {
	aux := presenceLimitsJSON{(*presenceLimitsPlain)(p), duration(p.PollLease)}
	if err := decodeSection("presence", b, &aux); err != nil {
		return err
	}
	p.PollLease = time.Duration(aux.PollLease)
	return nil
}
