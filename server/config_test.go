package server

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/session"
)

// checkValidate fails t unless err, what Validate returned, is nil where
// want is "" and an error containing want otherwise.
func checkValidate(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("Validate: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("Validate = %v, want an error containing %q", err, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		err    string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"loopback v4", func(c *Config) { c.Addr = "127.0.0.2:9000" }, ""},
		{"loopback v6", func(c *Config) { c.Addr = "[::1]:9000" }, ""},
		{"localhost", func(c *Config) { c.Addr = "localhost:9000" }, ""},
		{"all interfaces without a key", func(c *Config) { c.Addr = "0.0.0.0:8080" }, "refusing to listen on 0.0.0.0:8080 without --api-key"},
		{"empty host without a key", func(c *Config) { c.Addr = ":8080" }, "refusing to listen on :8080 without --api-key"},
		{"public address without a key", func(c *Config) { c.Addr = "192.0.2.1:8080" }, "refusing to listen"},
		{"hostname without a key", func(c *Config) { c.Addr = "push.example.com:8080" }, "refusing to listen"},
		{"all interfaces with a key", func(c *Config) { c.Addr = ":8080"; c.APIKeys = []string{"key-0123456789abcdef"} }, ""},
		{"blank key", func(c *Config) { c.APIKeys = []string{""} }, "api key #1"},
		{"key with spaces", func(c *Config) { c.APIKeys = []string{"key-0123456789abcdef", " key-0123456789abcde"} }, "api key #2 contains white space"},
		{"short key", func(c *Config) { c.APIKeys = []string{"secret"} }, "api key #1 is 6 characters long, under 16"},
		{"non-ASCII key", func(c *Config) { c.APIKeys = []string{"clé-0123456789abcdef"} }, "api key #1 contains white space, control or non-ASCII"},
		{"bad address", func(c *Config) { c.Addr = "8080" }, "invalid listen address"},
		{"bad origin", func(c *Config) { c.AllowedOrigins = []string{"example.com"} }, "allowed origin"},
		{"unknown broker", func(c *Config) { c.Broker = "kafka" }, "unknown broker"},
		{"redis without url", func(c *Config) { c.Broker = "redis" }, "--redis-url"},
		{"short ping", func(c *Config) { c.Ping = time.Millisecond }, "ping"},
		{"long poll timeout", func(c *Config) { c.PollTimeout = time.Minute }, "poll timeout"},
		{"negative write timeout", func(c *Config) { c.WriteTimeout = -1 }, "timeouts"},
		{"negative limit", func(c *Config) { c.Limits.MaxChannels = -1 }, "limits"},
		{"stall timeout off", func(c *Config) { c.StallTimeout, c.UnsentBytes = -1, NoLimit }, ""},
		{"short stall timeout", func(c *Config) { c.StallTimeout = 100 * time.Millisecond }, "stall timeout"},
		{"few unsent bytes", func(c *Config) { c.UnsentBytes = 100 }, "unsent bytes"},
		{"negative unsent bytes", func(c *Config) { c.UnsentBytes = -2 }, "unsent bytes"},
		{"proxy cidr", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.7", "::1"} }, ""},
		{"bad proxy", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/33"} }, "trusted proxy"},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, "log level"},
		{"bad log format", func(c *Config) { c.LogFormat = "xml" }, "log format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			tt.mutate(&c)
			checkValidate(t, c.Validate(), tt.err)
		})
	}
	t.Run("fills defaults", func(t *testing.T) {
		var c Config
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c, Defaults()) {
			t.Errorf("got %+v, want %+v", c, Defaults())
		}
	})
}

func TestNewRedisBrokerNeedsAValidURL(t *testing.T) {
	_, err := New(Config{Broker: "redis", RedisURL: "http://not-redis"})
	if err == nil || !strings.Contains(err.Error(), "redis broker") {
		t.Fatalf("New with a bad Redis URL = %v", err)
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "waterspout.json")
	writeFile(t, file, `{"addr":"127.0.0.1:1111","apiKeys":["file-key"],"ping":"30s","limits":{"maxChannels":7},"logFormat":"json"}`)
	other := filepath.Join(dir, "other.json")
	writeFile(t, other, `{"addr":"127.0.0.1:4444"}`)

	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"defaults", nil, nil, func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c, Defaults()) {
				t.Errorf("got %+v", c)
			}
		}},
		{"file over defaults", []string{"--config", file}, nil, func(t *testing.T, c Config) {
			want(t, c.Addr, "127.0.0.1:1111")
			want(t, c.APIKeys, []string{"file-key"})
			want(t, c.Ping, 30*time.Second)
			want(t, c.Limits.MaxChannels, 7)
			want(t, c.LogFormat, "json")
			want(t, c.LogLevel, DefaultLogLevel) // not in the file: default kept
		}},
		{"config file from the environment", nil, map[string]string{"WATERSPOUT_CONFIG": file}, func(t *testing.T, c Config) {
			want(t, c.Addr, "127.0.0.1:1111")
		}},
		{"config flag over its environment variable", []string{"--config", other}, map[string]string{"WATERSPOUT_CONFIG": file}, func(t *testing.T, c Config) {
			want(t, c.Addr, "127.0.0.1:4444")
		}},
		{"env over file", []string{"--config", file}, map[string]string{
			"WATERSPOUT_ADDR": "127.0.0.1:2222", "WATERSPOUT_API_KEYS": "env-a, env-b,", "WATERSPOUT_PING": "40s",
			"WATERSPOUT_MAX_CHANNELS": "9",
		}, func(t *testing.T, c Config) {
			want(t, c.Addr, "127.0.0.1:2222")
			want(t, c.APIKeys, []string{"env-a", "env-b"})
			want(t, c.Ping, 40*time.Second)
			want(t, c.Limits.MaxChannels, 9)
			want(t, c.LogFormat, "json") // only in the file
		}},
		{"flag over env", []string{"--config", file, "--addr", "127.0.0.1:3333", "--api-key", "flag-a", "--api-key", "flag-b", "--ping=50s"},
			map[string]string{"WATERSPOUT_ADDR": "127.0.0.1:2222", "WATERSPOUT_API_KEYS": "env-a", "WATERSPOUT_PING": "40s"},
			func(t *testing.T, c Config) {
				want(t, c.Addr, "127.0.0.1:3333")
				want(t, c.APIKeys, []string{"flag-a", "flag-b"})
				want(t, c.Ping, 50*time.Second)
			}},
		{"every setting from the environment", nil, map[string]string{
			"WATERSPOUT_ADDR": "127.0.0.1:1", "WATERSPOUT_API_KEYS": "k", "WATERSPOUT_ALLOWED_ORIGINS": "https://a.example,https://b.example",
			"WATERSPOUT_BROKER": "redis", "WATERSPOUT_REDIS_URL": "redis://r:6379/1", "WATERSPOUT_PING": "2s",
			"WATERSPOUT_POLL_TIMEOUT": "3s", "WATERSPOUT_POLL_DETACH": "500ms", "WATERSPOUT_WRITE_TIMEOUT": "4s", "WATERSPOUT_SHUTDOWN_TIMEOUT": "5s",
			"WATERSPOUT_TRUSTED_PROXIES": "10.0.0.0/8", "WATERSPOUT_MAX_MESSAGE_BYTES": "100", "WATERSPOUT_MAX_CHANNELS": "6",
			"WATERSPOUT_MAX_QUEUE_BYTES": "700", "WATERSPOUT_LOG_LEVEL": "debug", "WATERSPOUT_LOG_FORMAT": "json",
			"WATERSPOUT_MAX_SERVER_CHANNELS":    "800",
			"WATERSPOUT_SOCKJS_STICKY_COOKIE":   "true",
			"WATERSPOUT_MAX_CONNECTIONS_PER_IP": "11", "WATERSPOUT_CONNECTS_PER_SECOND": "12", "WATERSPOUT_CONNECT_BURST": "13",
			"WATERSPOUT_POLLS_PER_SECOND": "18", "WATERSPOUT_POLL_BURST": "19",
			"WATERSPOUT_API_CALLS_PER_SECOND": "20", "WATERSPOUT_API_CALL_BURST": "21",
			"WATERSPOUT_PUBLISHES_PER_SECOND": "-1", "WATERSPOUT_PUBLISH_BURST": "15", "WATERSPOUT_COMMANDS_PER_SECOND": "16",
			"WATERSPOUT_COMMAND_BURST": "17", "WATERSPOUT_TOKEN_HMAC_SECRET_FILE": "/s", "WATERSPOUT_TOKEN_HMAC_SECRET": "env-secret",
			"WATERSPOUT_TOKEN_ISSUER": "iss", "WATERSPOUT_TOKEN_AUDIENCE": "aud", "WATERSPOUT_TOKEN_LEEWAY": "2s",
			"WATERSPOUT_STALL_TIMEOUT": "6s", "WATERSPOUT_UNSENT_BYTES": "8192",
		}, func(t *testing.T, c Config) {
			want(t, c, Config{
				Addr: "127.0.0.1:1", APIKeys: []string{"k"}, AllowedOrigins: []string{"https://a.example", "https://b.example"},
				Broker: "redis", RedisURL: "redis://r:6379/1", Ping: 2 * time.Second, PollTimeout: 3 * time.Second, PollDetach: 500 * time.Millisecond,
				WriteTimeout: 4 * time.Second, ShutdownTimeout: 5 * time.Second, TrustedProxies: []string{"10.0.0.0/8"},
				StallTimeout: 6 * time.Second, UnsentBytes: 8192,
				Limits: session.Limits{MaxMessageBytes: 100, MaxChannels: 6, MaxQueueBytes: 700}, MaxServerChannels: 800,
				RateLimits: RateLimits{ConnectionsPerIP: 11, ConnectsPerSecond: 12, ConnectBurst: 13, PollsPerSecond: 18, PollBurst: 19, PublishesPerSecond: NoLimit,
					PublishBurst: 15, APICallsPerSecond: 20, APICallBurst: 21, CommandsPerSecond: 16, CommandBurst: 17},
				Tokens:             TokensConfig{HMACSecretFile: "/s", HMACSecret: "env-secret", Issuer: "iss", Audience: "aud", Leeway: 2 * time.Second},
				SockJSStickyCookie: true, LogLevel: "debug", LogFormat: "json",
			})
		}},
		{"every setting from flags", []string{"--addr=127.0.0.1:1", "--api-key=k", "--allowed-origin=https://a.example",
			"--broker=redis", "--redis-url=redis://r", "--ping=2s", "--poll-timeout=3s", "--poll-detach=2s", "--write-timeout=4s",
			"--shutdown-timeout=5s", "--trusted-proxy=10.0.0.0/8", "--max-message-bytes=100", "--max-channels=6",
			"--max-queue-bytes=700", "--sockjs-sticky-cookie", "--log-level=debug", "--log-format=json",
			"--max-connections-per-ip=-1", "--connects-per-second=12", "--connect-burst=13", "--polls-per-second=-1", "--poll-burst=19", "--publishes-per-second=14",
			"--publish-burst=15", "--api-calls-per-second=-1", "--api-call-burst=23", "--commands-per-second=-1", "--command-burst=17", "--token-hmac-secret-file=/s",
			"--token-issuer=iss", "--token-audience=aud", "--token-leeway=1s", "--stall-timeout=7s", "--unsent-bytes=-1"}, nil, func(t *testing.T, c Config) {
			want(t, c, Config{
				Addr: "127.0.0.1:1", APIKeys: []string{"k"}, AllowedOrigins: []string{"https://a.example"},
				Broker: "redis", RedisURL: "redis://r", Ping: 2 * time.Second, PollTimeout: 3 * time.Second, PollDetach: 2 * time.Second,
				WriteTimeout: 4 * time.Second, ShutdownTimeout: 5 * time.Second, TrustedProxies: []string{"10.0.0.0/8"},
				StallTimeout: 7 * time.Second, UnsentBytes: NoLimit,
				Limits: session.Limits{MaxMessageBytes: 100, MaxChannels: 6, MaxQueueBytes: 700},
				RateLimits: RateLimits{ConnectionsPerIP: NoLimit, ConnectsPerSecond: 12, ConnectBurst: 13, PollsPerSecond: NoLimit, PollBurst: 19, PublishesPerSecond: 14,
					PublishBurst: 15, APICallsPerSecond: NoLimit, APICallBurst: 23, CommandsPerSecond: NoLimit, CommandBurst: 17},
				Tokens:             TokensConfig{HMACSecretFile: "/s", Issuer: "iss", Audience: "aud", Leeway: time.Second},
				SockJSStickyCookie: true, LogLevel: "debug", LogFormat: "json",
			})
		}},
		{"the singular API key variable, as publish reads it", nil, map[string]string{"WATERSPOUT_API_KEY": "single-key"},
			func(t *testing.T, c Config) { want(t, c.APIKeys, []string{"single-key"}) }},
		{"both API key variables", nil, map[string]string{"WATERSPOUT_API_KEYS": "a,b", "WATERSPOUT_API_KEY": "c"},
			func(t *testing.T, c Config) { want(t, c.APIKeys, []string{"a", "b", "c"}) }},
		{"bool flag over env", []string{"--sockjs-sticky-cookie=false"}, map[string]string{"WATERSPOUT_SOCKJS_STICKY_COOKIE": "1"},
			func(t *testing.T, c Config) { want(t, c.SockJSStickyCookie, false) }},
		{"last scalar flag wins", []string{"--addr", "127.0.0.1:1", "--addr", "127.0.0.1:2"}, nil, func(t *testing.T, c Config) {
			want(t, c.Addr, "127.0.0.1:2")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(tt.args, func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.json")
	writeFile(t, typo, `{"adr":"127.0.0.1:1"}`)
	numeric := filepath.Join(dir, "numeric.json")
	writeFile(t, numeric, `{"ping":25}`)
	tokensTypo := filepath.Join(dir, "tokens.json")
	writeFile(t, tokensTypo, `{"tokens":{"keys":[{"secrte":"x"}]}}`)
	file := func(name, text string) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, text)
		return path
	}
	addrNumber := file("addr.json", `{"addr":8080}`)
	syntax := file("syntax.json", "{\n  \"addr\": \"127.0.0.1:1\",\n  \"ping\": ,\n}")
	lower := file("lower.json", `{"apikeys":["k"]}`)
	nestedLower := file("nested.json", `{"namespaces":[{"name":"a","HistorySize":1}]}`)
	tokensType := file("tokens-type.json", `{"tokens":{"issuer":5}}`)
	array := file("array.json", `[1]`)
	strayBrace := file("stray.json", `{"addr":"127.0.0.1:1"}}`)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		err  string
	}{
		{"unknown flag", []string{"--nope"}, nil, "not defined"},
		{"positional", []string{"extra"}, nil, "unexpected argument"},
		{"missing value", []string{"--addr"}, nil, "needs an argument"},
		{"bad duration flag", []string{"--ping", "soon"}, nil, `--ping: "soon" is not a duration (for example 25s, 2m)`},
		{"bad duration env", nil, map[string]string{"WATERSPOUT_POLL_TIMEOUT": "x"}, `WATERSPOUT_POLL_TIMEOUT: "x" is not a duration`},
		{"negative count", []string{"--max-channels=-1"}, nil, `--max-channels: "-1" is not a non-negative integer`},
		{"missing file", []string{"--config", filepath.Join(dir, "none.json")}, nil, "config file"},
		{"unknown file key", []string{"--config", typo}, nil, `unknown field "adr"`},
		{"numeric duration", []string{"--config", numeric}, nil, "25s"},
		{"bad bool", nil, map[string]string{"WATERSPOUT_SOCKJS_STICKY_COOKIE": "maybe"}, `WATERSPOUT_SOCKJS_STICKY_COOKIE: "maybe" is not true or false`},
		{"rate below -1", []string{"--connects-per-second=-2"}, nil, `--connects-per-second: "-2" is not a count (or -1 for no limit)`},
		{"negative burst", []string{"--connect-burst=-1"}, nil, `--connect-burst: "-1" is not a non-negative integer`},
		{"no flag for the secret", []string{"--token-hmac-secret=x"}, nil, "not defined"},
		{"unknown tokens key", []string{"--config", tokensTypo}, nil, `unknown field "secrte"`},
		// Issue 21 item 9: errors a person can act on.
		{"number for a string", []string{"--config", addrNumber}, nil, "line 1, column 12: addr is a JSON number; it must be a string"},
		{"syntax error", []string{"--config", syntax}, nil, "line 3, column 11: invalid character ','"},
		{"a stray closing brace", []string{"--config", strayBrace}, nil, "trailing data"},
		{"key in the wrong case", []string{"--config", lower}, nil, `unknown key "apikeys": did you mean "apiKeys"? (keys are case-sensitive)`},
		{"nested key in the wrong case", []string{"--config", nestedLower}, nil, `unknown key "namespaces[0].HistorySize": did you mean "historySize"?`},
		{"tokens field of the wrong type", []string{"--config", tokensType}, nil, "tokens.issuer is a JSON number; it must be a string"},
		{"not an object", []string{"--config", array}, nil, "the file holds a JSON array; it must hold one JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(tt.args, func(k string) string { return tt.env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("LoadConfig = %v, want an error containing %q", err, tt.err)
			}
		})
	}
	for _, arg := range []string{"-h", "--help", "-help"} {
		if _, err := LoadConfig([]string{arg}, func(string) string { return "" }); !errors.Is(err, ErrHelp) {
			t.Errorf("LoadConfig(%s) = %v, want ErrHelp", arg, err)
		}
	}
}

func TestConfigFileNamespaces(t *testing.T) {
	var c Config
	err := json.Unmarshal([]byte(`{"namespaces":[{"name":"orders","historySize":50,"historyTTL":"5m","clientPublish":true}]}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	want(t, c.Namespaces, []session.Namespace{{Name: "orders", HistorySize: 50, HistoryTTL: 5 * time.Minute, ClientPublish: true}})
	if err := json.Unmarshal([]byte(`{"namespaces":[{"name":"x","histSize":1}]}`), &c); err == nil {
		t.Errorf("unknown namespace field accepted")
	}
}

func TestConfigJSONRoundTrip(t *testing.T) {
	in := Defaults()
	in.APIKeys = []string{"a"}
	in.Namespaces = []session.Namespace{{Name: "n", HistorySize: 3, HistoryTTL: time.Hour, Anonymous: true}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"ping":"25s"`) || !strings.Contains(string(b), `"historyTTL":"1h0m0s"`) {
		t.Errorf("durations not written as strings: %s", b)
	}
	var out Config
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	want(t, out, in)
}

func TestServeUsageListsEveryOption(t *testing.T) {
	var b strings.Builder
	if err := WriteServeUsage(&b); err != nil {
		t.Fatal(err)
	}
	help := b.String()
	// Written out rather than taken from the options table, so that
	// dropping an option from the table fails here.
	for _, name := range []string{"config", "addr", "api-key", "allowed-origin", "broker", "redis-url", "ping",
		"poll-timeout", "write-timeout", "shutdown-timeout", "trusted-proxy", "max-message-bytes", "max-channels",
		"max-queue-bytes", "max-connections-per-ip", "connects-per-second", "connect-burst", "publishes-per-second",
		"publish-burst", "commands-per-second", "command-burst", "token-hmac-secret-file", "token-issuer", "token-audience",
		"token-leeway", "redis-sentinel", "redis-master", "redis-cluster", "redis-username", "redis-allow-eviction", "sockjs-sticky-cookie", "log-level", "log-format"} {
		if !regexp.MustCompile(`(?m)^  --` + name + `( |$)`).MatchString(help) {
			t.Errorf("help lacks --%s", name)
		}
	}
	for _, o := range options {
		if !strings.Contains(help, "env "+o.env) {
			t.Errorf("help lacks %s", o.env)
		}
	}
	for _, s := range []string{"WATERSPOUT_API_KEYS (comma-separated)", "default 127.0.0.1:8080", `file "apiKeys"`, "namespaces"} {
		if !strings.Contains(help, s) {
			t.Errorf("help lacks %q:\n%s", s, help)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func want[T any](t *testing.T, got, wanted T) {
	t.Helper()
	if !reflect.DeepEqual(got, wanted) {
		t.Errorf("got %+v, want %+v", got, wanted)
	}
}

// FuzzConfigFile: any config file either loads or fails with an error,
// never a panic, and what loads writes back as JSON that loads the same.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		`{"addr":"127.0.0.1:1","apiKeys":["k"],"ping":"30s","limits":{"maxChannels":7}}`,
		`{"apikeys":["k"]}`, `{"namespaces":[{"name":"a","HistorySize":1}]}`, `{"tokens":{"keys":[{"ID":"a"}]}}`,
		`{"addr":8080}`, "{\n\"ping\": ,\n}", `[1]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := Defaults()
		if c.UnmarshalJSON(b) != nil {
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("loaded config does not marshal: %v", err)
		}
		again := Defaults()
		if err := again.UnmarshalJSON(out); err != nil {
			t.Fatalf("written config %s does not load: %v", out, err)
		}
	})
}

// TestRedisFlags: Sentinel and Cluster are chosen by flag, the passwords
// come only from the environment or the file, and a half-configured
// Sentinel is refused with the flags to use.
func TestRedisFlags(t *testing.T) {
	env := map[string]string{"WATERSPOUT_REDIS_PASSWORD": "s3cret", "WATERSPOUT_REDIS_SENTINEL_PASSWORD": "s3nt"}
	c, err := LoadConfig([]string{"--broker", "redis", "--redis-sentinel", "10.0.0.1:26379",
		"--redis-sentinel", "10.0.0.2:26379", "--redis-master", "ws", "--redis-allow-eviction"},
		func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want(t, c.RedisSentinels, []string{"10.0.0.1:26379", "10.0.0.2:26379"})
	want(t, []any{c.RedisMaster, c.RedisPassword, c.RedisSentinelPassword, c.RedisAllowEviction}, []any{"ws", "s3cret", "s3nt", true})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err = LoadConfig([]string{"--broker", "redis", "--redis-cluster", "10.0.0.1:7000", "--redis-cluster", "10.0.0.2:7000"},
		func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	want(t, c.RedisCluster, []string{"10.0.0.1:7000", "10.0.0.2:7000"})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err = LoadConfig([]string{"--broker", "redis", "--redis-sentinel", "10.0.0.1:26379"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "master's name") || !strings.Contains(err.Error(), "--redis-master") {
		t.Fatalf("Sentinel without a master name: %v", err)
	}
	if _, err := LoadConfig([]string{"--redis-password", "x"}, func(string) string { return "" }); err == nil {
		t.Fatal("the Redis password was accepted as a flag")
	}
}
