package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/waterspout/waterspout/session"
)

// ErrHelp is returned by LoadConfig when the arguments ask for help; print
// WriteServeUsage and exit successfully.
var ErrHelp = flag.ErrHelp

// maxConfigFileBytes bounds what LoadConfig reads from a config file.
const maxConfigFileBytes = 1 << 20

// option is one setting of `waterspout serve`: its flag, environment
// variable and config file key in one place, so the help, the docs and the
// precedence rules cannot drift apart.
type option struct {
	flag string // without dashes; "" for a setting only the environment may hold (a secret)
	arg  string // placeholder in the help
	env  string
	// alias is a second environment variable of the same meaning, read
	// as well (WATERSPOUT_API_KEY, the name `waterspout publish` reads).
	alias string
	key   string // config file key ("" when the file cannot hold it)
	help  string
	list  bool // repeatable flag, comma-separated environment variable
	// boolean options take no value on the command line (--x means
	// --x=true) and true/false/1/0 elsewhere.
	boolean bool
	def     func(Config) string
	set     func(c *Config, vals []string) error // scalars get exactly one value
}

func str(f func(*Config) *string) func(*Config, []string) error {
	return func(c *Config, v []string) error { *f(c) = v[0]; return nil }
}

func strs(f func(*Config) *[]string) func(*Config, []string) error {
	return func(c *Config, v []string) error { *f(c) = append([]string(nil), v...); return nil }
}

// parsed sets a scalar that parse reads from the one value; a value parse
// refuses is "not" want.
func parsed[T any](parse func(string) (T, error), want string, f func(*Config) *T) func(*Config, []string) error {
	return func(c *Config, v []string) error {
		x, err := parse(v[0])
		if err != nil {
			return fmt.Errorf("%q is not %s", v[0], want)
		}
		*f(c) = x
		return nil
	}
}

func dur(f func(*Config) *time.Duration) func(*Config, []string) error {
	return parsed(time.ParseDuration, "a duration (for example 25s, 2m)", f)
}

func count(f func(*Config) *int) func(*Config, []string) error {
	return parsed(intAtLeast(0), "a non-negative integer", f)
}

// rate is a RateLimits field: a positive count, or NoLimit (-1).
func rate(f func(*Config) *int) func(*Config, []string) error {
	return parsed(intAtLeast(NoLimit), "a count (or -1 for no limit)", f)
}

func boolean(f func(*Config) *bool) func(*Config, []string) error {
	return parsed(strconv.ParseBool, "true or false", f)
}

// intAtLeast parses an integer of at least least.
func intAtLeast(least int) func(string) (int, error) {
	return func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err == nil && n < least {
			err = fmt.Errorf("%d is under %d", n, least)
		}
		return n, err
	}
}

func shown(s string) func(Config) string { return func(Config) string { return s } }

// configFlag is the option naming the config file; it is read before the others.
const configFlag = "config"

var options = []option{
	{flag: configFlag, arg: "FILE", env: "WATERSPOUT_CONFIG",
		help: "JSON config file; it can hold every setting below, and namespaces",
		def:  shown("none"), set: func(*Config, []string) error { return nil }},
	{flag: "addr", arg: "HOST:PORT", env: "WATERSPOUT_ADDR", key: "addr",
		help: "listen address; without an API key only a loopback address is accepted",
		def:  func(c Config) string { return c.Addr }, set: str(func(c *Config) *string { return &c.Addr })},
	{flag: "api-key", arg: "KEY", env: "WATERSPOUT_API_KEYS", alias: "WATERSPOUT_API_KEY", key: "apiKeys", list: true,
		help: "API key for /api/* (Authorization: Bearer KEY); repeat for several (prefer the environment: flags show in ps)",
		def:  shown("none: the API is open, loopback only"), set: strs(func(c *Config) *[]string { return &c.APIKeys })},
	{flag: "allowed-origin", arg: "ORIGIN", env: "WATERSPOUT_ALLOWED_ORIGINS", key: "allowedOrigins", list: true,
		help: "browser origin allowed to connect (https://app.example.com, https://*.example.com, or * for any); repeatable",
		def:  shown("same origin only"), set: strs(func(c *Config) *[]string { return &c.AllowedOrigins })},
	{flag: "broker", arg: "NAME", env: "WATERSPOUT_BROKER", key: "broker",
		help: "broker: memory (one process) or redis (several nodes)",
		def:  func(c Config) string { return c.Broker }, set: str(func(c *Config) *string { return &c.Broker })},
	{flag: "redis-url", arg: "URL", env: "WATERSPOUT_REDIS_URL", key: "redisURL",
		help: "Redis URL for --broker redis (redis://host:6379/0)",
		def:  shown("none"), set: str(func(c *Config) *string { return &c.RedisURL })},
	{flag: "redis-sentinel", arg: "HOST:PORT", env: "WATERSPOUT_REDIS_SENTINELS", key: "redisSentinels", list: true,
		help: "Redis Sentinel to ask for the master named by --redis-master, instead of --redis-url; repeatable. Nodes follow failovers",
		def:  shown("none"), set: strs(func(c *Config) *[]string { return &c.RedisSentinels })},
	{flag: "redis-master", arg: "NAME", env: "WATERSPOUT_REDIS_MASTER", key: "redisMaster",
		help: "name of the master the Sentinels monitor (with --redis-sentinel)",
		def:  shown("none"), set: str(func(c *Config) *string { return &c.RedisMaster })},
	{flag: "redis-cluster", arg: "HOST:PORT", env: "WATERSPOUT_REDIS_CLUSTER", key: "redisCluster", list: true,
		help: "Redis Cluster node (Redis 7: sharded pub/sub), instead of --redis-url; repeat for several",
		def:  shown("none"), set: strs(func(c *Config) *[]string { return &c.RedisCluster })},
	{flag: "redis-username", arg: "USER", env: "WATERSPOUT_REDIS_USERNAME", key: "redisUsername",
		help: "ACL user for the Redis servers found through Sentinel or Cluster (a URL carries its own)",
		def:  shown("default"), set: str(func(c *Config) *string { return &c.RedisUsername })},
	{flag: "", env: "WATERSPOUT_REDIS_PASSWORD", key: "redisPassword",
		help: "password for the Redis servers found through Sentinel or Cluster; not a flag, so that it never shows in ps",
		def:  shown("none"), set: str(func(c *Config) *string { return &c.RedisPassword })},
	{flag: "", env: "WATERSPOUT_REDIS_SENTINEL_PASSWORD", key: "redisSentinelPassword",
		help: "password for the Sentinels themselves; not a flag, so that it never shows in ps",
		def:  shown("none"), set: str(func(c *Config) *string { return &c.RedisSentinelPassword })},
	{flag: "redis-allow-eviction", env: "WATERSPOUT_REDIS_ALLOW_EVICTION", key: "redisAllowEviction", boolean: true,
		help: "report ready although Redis may evict keys (maxmemory with a policy other than noeviction), accepting lost history and repeated idempotency keys",
		def:  shown("false: /readyz answers 503"), set: boolean(func(c *Config) *bool { return &c.RedisAllowEviction })},
	{flag: "ping", arg: "DURATION", env: "WATERSPOUT_PING", key: "ping",
		help: "heartbeat interval announced to clients",
		def:  func(c Config) string { return c.Ping.String() }, set: dur(func(c *Config) *time.Duration { return &c.Ping })},
	{flag: "poll-timeout", arg: "DURATION", env: "WATERSPOUT_POLL_TIMEOUT", key: "pollTimeout",
		help: "how long a long-poll request is held when there is nothing to send (1s..55s)",
		def:  func(c Config) string { return c.PollTimeout.String() }, set: dur(func(c *Config) *time.Duration { return &c.PollTimeout })},
	{flag: "poll-detach", arg: "DURATION", env: "WATERSPOUT_POLL_DETACH", key: "pollDetach",
		help: "how long a held long-poll waits on net/http before it detaches to wait at less memory",
		def:  func(c Config) string { return c.PollDetach.String() }, set: dur(func(c *Config) *time.Duration { return &c.PollDetach })},
	{flag: "write-timeout", arg: "DURATION", env: "WATERSPOUT_WRITE_TIMEOUT", key: "writeTimeout",
		help: "deadline of every write to a client; a client slower than this is disconnected",
		def:  func(c Config) string { return c.WriteTimeout.String() }, set: dur(func(c *Config) *time.Duration { return &c.WriteTimeout })},
	{flag: "stall-timeout", arg: "DURATION", env: "WATERSPOUT_STALL_TIMEOUT", key: "stallTimeout",
		help: "how long data may wait for a client to acknowledge any of it before the connection is dropped (Linux); ends clients that stop reading without closing; negative for the kernel's default",
		def:  func(c Config) string { return c.StallTimeout.String() }, set: dur(func(c *Config) *time.Duration { return &c.StallTimeout })},
	{flag: "unsent-bytes", arg: "N", env: "WATERSPOUT_UNSENT_BYTES", key: "unsentBytes",
		help: "bytes not yet sent the kernel keeps for one connection (Linux); beyond them data waits in the session queue; -1 for the kernel's default",
		def:  func(c Config) string { return strconv.Itoa(c.UnsentBytes) }, set: rate(func(c *Config) *int { return &c.UnsentBytes })},
	{flag: "shutdown-timeout", arg: "DURATION", env: "WATERSPOUT_SHUTDOWN_TIMEOUT", key: "shutdownTimeout",
		help: "how long a graceful shutdown may take before connections are cut",
		def:  func(c Config) string { return c.ShutdownTimeout.String() }, set: dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{flag: "trusted-proxy", arg: "CIDR", env: "WATERSPOUT_TRUSTED_PROXIES", key: "trustedProxies", list: true,
		help: "reverse proxy whose X-Forwarded-For is believed (CIDR or address); repeatable",
		def:  shown("none: the peer address is the client"), set: strs(func(c *Config) *[]string { return &c.TrustedProxies })},
	{flag: "max-message-bytes", arg: "N", env: "WATERSPOUT_MAX_MESSAGE_BYTES", key: "limits.maxMessageBytes",
		help: "largest publication data or client frame, in bytes",
		def:  shown(strconv.Itoa(session.DefaultMaxMessageBytes)), set: count(func(c *Config) *int { return &c.Limits.MaxMessageBytes })},
	{flag: "max-batch-bytes", arg: "N", env: "WATERSPOUT_MAX_BATCH_BYTES", key: "limits.maxBatchBytes",
		help: "largest POST /api/batch body, in bytes; larger ones are answered 413; at least --max-message-bytes (unset: 1048576, or one largest message and 8 KiB when that is more)",
		def:  shown(strconv.Itoa(DefaultMaxBatchBytes)), set: count(func(c *Config) *int { return &c.MaxBatchBytes })},
	{flag: "max-channels", arg: "N", env: "WATERSPOUT_MAX_CHANNELS", key: "limits.maxChannels",
		help: "subscriptions per connection",
		def:  shown(strconv.Itoa(session.DefaultMaxChannels)), set: count(func(c *Config) *int { return &c.Limits.MaxChannels })},
	{flag: "max-server-channels", arg: "N", env: "WATERSPOUT_MAX_SERVER_CHANNELS", key: "maxServerChannels",
		help: "channels the memory broker holds at once (a channel with no subscriber and nothing retained holds nothing), or, on Redis, channels this node starts there within an hour; at the cap a subscribe or publish that would start a new channel gets 503 while existing channels work",
		def:  shown(strconv.Itoa(session.DefaultMaxBrokerChannels)), set: count(func(c *Config) *int { return &c.MaxServerChannels })},
	{flag: "max-queue-bytes", arg: "N", env: "WATERSPOUT_MAX_QUEUE_BYTES", key: "limits.maxQueueBytes",
		help: "bytes queued for one client before it is disconnected as too slow",
		def:  shown(strconv.Itoa(session.DefaultMaxQueueBytes)), set: count(func(c *Config) *int { return &c.Limits.MaxQueueBytes })},
	{flag: "max-connections-per-ip", arg: "N", env: "WATERSPOUT_MAX_CONNECTIONS_PER_IP", key: "rateLimits.connectionsPerIP",
		help: "open connections per client address on /connect/* (IPv6: per /64); more are answered 429; -1 for no limit",
		def:  shown(strconv.Itoa(DefaultConnectionsPerIP)), set: rate(func(c *Config) *int { return &c.RateLimits.ConnectionsPerIP })},
	{flag: "connects-per-second", arg: "N", env: "WATERSPOUT_CONNECTS_PER_SECOND", key: "rateLimits.connectsPerSecond",
		help: "requests per second per client address to /connect/* (continuing polls count toward --polls-per-second instead), beyond the burst; more are answered 429; -1 for no limit",
		def:  shown(strconv.Itoa(DefaultConnectsPerSecond)), set: rate(func(c *Config) *int { return &c.RateLimits.ConnectsPerSecond })},
	{flag: "connect-burst", arg: "N", env: "WATERSPOUT_CONNECT_BURST", key: "rateLimits.connectBurst",
		help: "requests to /connect/* one client address may make at once",
		def:  shown(strconv.Itoa(DefaultConnectBurst)), set: count(func(c *Config) *int { return &c.RateLimits.ConnectBurst })},
	{flag: "polls-per-second", arg: "N", env: "WATERSPOUT_POLLS_PER_SECOND", key: "rateLimits.pollsPerSecond",
		help: "continuing long-polls (a query cursor naming one of the poll's channels) per second per client address, beyond the burst, instead of counting as connects; more are answered 429; -1 for no limit",
		def:  shown(strconv.Itoa(DefaultPollsPerSecond)), set: rate(func(c *Config) *int { return &c.RateLimits.PollsPerSecond })},
	{flag: "poll-burst", arg: "N", env: "WATERSPOUT_POLL_BURST", key: "rateLimits.pollBurst",
		help: "continuing long-polls one client address may make at once",
		def:  shown(strconv.Itoa(DefaultPollBurst)), set: count(func(c *Config) *int { return &c.RateLimits.PollBurst })},
	{flag: "publishes-per-second", arg: "N", env: "WATERSPOUT_PUBLISHES_PER_SECOND", key: "rateLimits.publishesPerSecond",
		help: "publications per second per API key or publisher token subject on /api/* (a broadcast counts one per channel), beyond the burst; more are answered 429; -1 for no limit; set it as a quota for publisher tokens given to less trusted parties",
		def:  shown("-1: no limit, a backend's credential is trusted"), set: rate(func(c *Config) *int { return &c.RateLimits.PublishesPerSecond })},
	{flag: "publish-burst", arg: "N", env: "WATERSPOUT_PUBLISH_BURST", key: "rateLimits.publishBurst",
		help: "publications one API key may make at once, when --publishes-per-second is set",
		def:  shown(strconv.Itoa(DefaultPublishBurst)), set: count(func(c *Config) *int { return &c.RateLimits.PublishBurst })},
	{flag: "api-calls-per-second", arg: "N", env: "WATERSPOUT_API_CALLS_PER_SECOND", key: "rateLimits.apiCallsPerSecond",
		help: "other /api/* requests (history, presence, presence stats, channels, disconnect, unsubscribe) per second per API key or publisher token subject, beyond the burst; more are answered 429; -1 for no limit; a quota for publisher tokens given to less trusted parties",
		def:  shown("-1: no limit, a backend's credential is trusted"), set: rate(func(c *Config) *int { return &c.RateLimits.APICallsPerSecond })},
	{flag: "api-call-burst", arg: "N", env: "WATERSPOUT_API_CALL_BURST", key: "rateLimits.apiCallBurst",
		help: "other /api/* requests one API key may make at once, when --api-calls-per-second is set",
		def:  shown(strconv.Itoa(DefaultAPICallBurst)), set: count(func(c *Config) *int { return &c.RateLimits.APICallBurst })},
	{flag: "commands-per-second", arg: "N", env: "WATERSPOUT_COMMANDS_PER_SECOND", key: "rateLimits.commandsPerSecond",
		help: "commands per second per WebSocket or SockJS session, beyond the burst; more get error 429, and a session that keeps on is closed with 3008; -1 for no limit",
		def:  shown(strconv.Itoa(DefaultCommandsPerSecond)), set: rate(func(c *Config) *int { return &c.RateLimits.CommandsPerSecond })},
	{flag: "command-burst", arg: "N", env: "WATERSPOUT_COMMAND_BURST", key: "rateLimits.commandBurst",
		help: "commands one session may send at once",
		def:  shown(strconv.Itoa(DefaultCommandBurst)), set: count(func(c *Config) *int { return &c.RateLimits.CommandBurst })},
	{flag: "token-hmac-secret-file", arg: "FILE", env: "WATERSPOUT_TOKEN_HMAC_SECRET_FILE", key: "tokens.hmacSecretFile",
		help: "file holding the HS256 secret (at least 32 bytes) that connection and publisher tokens are signed with; more keys, RS256 and ES256 public keys and key ids go in the config file under tokens.keys",
		def:  shown("none: tokens are refused, only anonymous namespaces can be subscribed to"), set: str(func(c *Config) *string { return &c.Tokens.HMACSecretFile })},
	{flag: "", env: "WATERSPOUT_TOKEN_HMAC_SECRET",
		help: "the HS256 token secret itself (at least 32 bytes), used beside the secret file and tokens.keys; environment only, so that it never shows in ps",
		def:  shown("none"), set: str(func(c *Config) *string { return &c.Tokens.HMACSecret })},
	{flag: "token-issuer", arg: "ISS", env: "WATERSPOUT_TOKEN_ISSUER", key: "tokens.issuer",
		help: "when set, tokens must carry this iss",
		def:  shown("none: not checked"), set: str(func(c *Config) *string { return &c.Tokens.Issuer })},
	{flag: "token-audience", arg: "AUD", env: "WATERSPOUT_TOKEN_AUDIENCE", key: "tokens.audience",
		help: "when set, tokens must name this audience in aud",
		def:  shown("none: not checked"), set: str(func(c *Config) *string { return &c.Tokens.Audience })},
	{flag: "token-leeway", arg: "DURATION", env: "WATERSPOUT_TOKEN_LEEWAY", key: "tokens.leeway",
		help: "clock skew allowed on exp, nbf and iat (at most 5m); a token still works this long after exp",
		def:  func(c Config) string { return c.Tokens.Leeway.String() }, set: dur(func(c *Config) *time.Duration { return &c.Tokens.Leeway })},
	{flag: "admin-secret-file", arg: "FILE", env: "WATERSPOUT_ADMIN_SECRET_FILE", key: "admin.secretFile",
		help: "file holding the secret (at least 32 bytes, no spaces) that opens the operator's live view at /admin (the page asks for it; GET /admin/state takes it as Authorization: Bearer SECRET)",
		def:  shown("none: /admin is off and answers 404"), set: str(func(c *Config) *string { return &c.Admin.SecretFile })},
	{flag: "sockjs-sticky-cookie", arg: "", env: "WATERSPOUT_SOCKJS_STICKY_COOKIE", key: "sockjsStickyCookie", boolean: true,
		help: "set a JSESSIONID cookie on SockJS responses so a load balancer can pin each SockJS client to one node (SockJS needs sticky sessions with several nodes; WebSocket, SSE and long-poll do not)",
		def:  shown("false"), set: boolean(func(c *Config) *bool { return &c.SockJSStickyCookie })},
	{flag: "log-level", arg: "LEVEL", env: "WATERSPOUT_LOG_LEVEL", key: "logLevel",
		help: "debug, info, warn or error",
		def:  func(c Config) string { return c.LogLevel }, set: str(func(c *Config) *string { return &c.LogLevel })},
	{flag: "log-format", arg: "FORMAT", env: "WATERSPOUT_LOG_FORMAT", key: "logFormat",
		help: "text or json",
		def:  func(c Config) string { return c.LogFormat }, set: str(func(c *Config) *string { return &c.LogFormat })},
}

// LoadConfig builds the configuration of `waterspout serve` from its
// arguments, the environment (getenv, usually os.Getenv) and the config file
// they name. Each setting comes from its flag, else its environment
// variable, else the file, else the default. It returns ErrHelp for -h and
// --help; any other error is the invocation's fault (a usage error). The
// result is not validated: call Validate (New does).
func LoadConfig(args []string, getenv func(string) string) (Config, error) {
	fset := flag.NewFlagSet("serve", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	given := make(map[string][]string)
	for _, o := range options {
		name := o.flag
		if name == "" {
			continue
		}
		record := func(v string) error {
			given[name] = append(given[name], v)
			return nil
		}
		if o.boolean {
			fset.BoolFunc(name, o.help, record)
		} else {
			fset.Func(name, o.help, record)
		}
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, ErrHelp
		}
		return Config{}, err
	}
	if fset.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fset.Arg(0))
	}

	cfg := Defaults()
	path := getenv("WATERSPOUT_CONFIG")
	if v := given[configFlag]; len(v) > 0 {
		path = v[len(v)-1]
	}
	if path != "" {
		if err := readConfigFile(path, &cfg); err != nil {
			return Config{}, err
		}
	}
	for _, o := range options {
		raw := getenv(o.env)
		if o.alias != "" && getenv(o.alias) != "" {
			raw = strings.Join(append(SplitList(raw), SplitList(getenv(o.alias))...), ",") // both count (list options only)
		}
		if o.flag == configFlag || raw == "" {
			continue
		}
		vals := []string{raw}
		if o.list {
			vals = SplitList(raw)
		}
		if err := o.set(&cfg, vals); err != nil {
			return Config{}, fmt.Errorf("%s: %w", o.env, err)
		}
	}
	for _, o := range options {
		vals, ok := given[o.flag]
		if !ok || o.flag == configFlag || o.flag == "" {
			continue
		}
		if !o.list {
			vals = vals[len(vals)-1:] // the last one wins, as with the flag package
		}
		if err := o.set(&cfg, vals); err != nil {
			return Config{}, fmt.Errorf("--%s: %w", o.flag, err)
		}
	}
	return cfg, nil
}

// readConfigFile overlays the JSON file at path on cfg.
func readConfigFile(path string, cfg *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFileBytes+1))
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(b) > maxConfigFileBytes {
		return fmt.Errorf("config file %s is larger than %d bytes", path, maxConfigFileBytes)
	}
	if err := cfg.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// wrap writes text as lines of at most width columns, each indented.
func wrap(b *strings.Builder, text, indent string, width int) {
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
}

// SplitList splits a comma-separated list the way serve reads its list
// settings from the environment (WATERSPOUT_API_KEYS, ...): each item
// trimmed, blanks dropped. The other commands' list flags (waterspout token
// --channels) read lists the same way.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// WriteServeUsage writes the help of `waterspout serve`: every flag with its
// environment variable, config file key and default.
func WriteServeUsage(w io.Writer) error {
	d := Defaults()
	var b strings.Builder
	b.WriteString(`Usage: waterspout serve [flags]

Runs the push server. Each setting is taken from its flag, else from its
environment variable, else from the config file, else its default.
Repeatable flags replace (not extend) the environment and the file.

Flags:
`)
	for _, o := range options {
		where := "env " + o.env
		if o.list {
			where += " (comma-separated)"
		}
		if o.key != "" {
			where += fmt.Sprintf(", file %q", o.key)
		}
		where += ", default " + o.def(d)
		if o.alias != "" {
			where += "; env " + o.alias + " is read as well"
		}
		switch {
		case o.flag == "" && o.key != "":
			b.WriteString("  (no flag: environment or file)\n")
		case o.flag == "":
			b.WriteString("  (environment only)\n")
		default:
			fmt.Fprintf(&b, "  --%s\n", strings.TrimSpace(o.flag+" "+o.arg))
		}
		wrap(&b, o.help, "        ", 78)
		wrap(&b, where, "        ", 78)
	}
	b.WriteString(`  -h, --help
        show this help

Namespaces (per channel prefix: history size and TTL, anonymous access,
client publish) are set in the config file only, under "namespaces"; so are
token keys beyond the HMAC secret, under "tokens": {"keys": [{"id", "alg",
"secret" | "secretFile" | "publicKeyFile"}]}.
`)
	_, err := io.WriteString(w, b.String())
	return err
}
