package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/buildinfo"
	"github.com/waterspout/waterspout/internal/leaktest"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/server"
)

// TestMain fails the package when tests leave goroutines behind.
func TestMain(m *testing.M) { leaktest.Main(m) }

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = wiretest.LogBuffer

type result struct {
	code           int
	stdout, stderr string
}

// invoke runs the command line with the given environment and stdin.
func invoke(t *testing.T, ctx context.Context, environ map[string]string, stdin string, args ...string) result {
	t.Helper()
	// A serve that starts when the test expected it to refuse would run
	// forever; bound it so the test fails on the exit code instead of hanging.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out, errOut syncBuffer
	code := run(ctx, args, &env{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return environ[k] },
	})
	return result{code, out.String(), errOut.String()}
}

// apiServer serves a real server.Server handler for `publish` to talk to.
func apiServer(t *testing.T, keys ...string) string {
	t.Helper()
	s, err := server.New(server.Config{Addr: "127.0.0.1:0", APIKeys: keys, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return wiretest.Serve(t, s).URL
}

func TestPublishCommand(t *testing.T) {
	const apiKey = "publish-test-key-0123"
	url := apiServer(t, apiKey)
	ctx := context.Background()
	auth := map[string]string{"WATERSPOUT_API_KEY": apiKey}
	tests := []struct {
		name   string
		env    map[string]string
		stdin  string
		args   []string
		code   int
		stdout string // regexp
		stderr string // regexp
	}{
		{"publishes", auth, "", []string{"publish", "news", `{"a":1}`, "--server", url},
			0, `^\{"channel":"news","offset":1,"epoch":"[A-Za-z0-9_-]+"\}\n$`, `^$`},
		{"flags before arguments", auth, "", []string{"publish", "--server", url, "c2", `"text"`},
			0, `"offset":1`, `^$`},
		{"data from stdin", auth, `[1, 2]`, []string{"publish", "c3", "-", "--server=" + url},
			0, `"offset":1`, `^$`},
		{"key from the server's variable", map[string]string{"WATERSPOUT_API_KEYS": apiKey + ",other"}, "",
			[]string{"publish", "c4", "1", "--server", url}, 0, `"offset":1`, `^$`},
		{"server from the environment", map[string]string{"WATERSPOUT_API_KEY": apiKey, "WATERSPOUT_SERVER": url + "/"}, "",
			[]string{"publish", "c5", "1"}, 0, `"offset":1`, `^$`},
		{"wrong api key", nil, "", []string{"publish", "news", "1", "--server", url, "--api-key", "nope"},
			1, `^$`, `401: invalid API key`},
		{"bad channel", auth, "", []string{"publish", "bad channel", "1", "--server", url},
			1, `^$`, `400: .*invalid character`},
		{"server down", auth, "", []string{"publish", "news", "1", "--server", "http://127.0.0.1:1"},
			1, `^$`, `publish: `},
		{"invalid json", auth, "", []string{"publish", "news", "{", "--server", url},
			2, `^$`, `not valid JSON`},
		{"one argument", auth, "", []string{"publish", "news"}, 2, `^$`, `want CHANNEL and JSON`},
		{"bad server url", auth, "", []string{"publish", "news", "1", "--server", "ftp://x"}, 2, `^$`, `not an http`},
		{"unknown flag", auth, "", []string{"publish", "--nope", "news", "1"}, 2, `^$`, `not defined`},
		{"help", nil, "", []string{"publish", "--help"}, 0, `Usage: waterspout publish`, `^$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invoke(t, ctx, tt.env, tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !regexp.MustCompile(tt.stdout).MatchString(r.stdout) {
				t.Errorf("stdout %q does not match %s", r.stdout, tt.stdout)
			}
			if !regexp.MustCompile(tt.stderr).MatchString(r.stderr) {
				t.Errorf("stderr %q does not match %s", r.stderr, tt.stderr)
			}
		})
	}
}

func TestPublishCommandIdempotencyKey(t *testing.T) {
	const apiKey = "publish-test-key-0123"
	url := apiServer(t, apiKey)
	args := []string{"publish", "orders", `{"order":42}`, "--server", url, "--api-key", apiKey, "--key", "order-42"}
	first := invoke(t, context.Background(), nil, "", args...)
	second := invoke(t, context.Background(), nil, "", args...)
	if first.code != 0 || second.code != 0 {
		t.Fatalf("exits %d %d: %s %s", first.code, second.code, first.stderr, second.stderr)
	}
	if first.stdout != second.stdout || !strings.Contains(first.stdout, `"offset":1`) {
		t.Errorf("answers %q and %q, want the same original publication", first.stdout, second.stdout)
	}
	if first.stderr != "" || !strings.Contains(second.stderr, "used before") {
		t.Errorf("stderr %q then %q", first.stderr, second.stderr)
	}
}

func TestServeHelpListsEveryFlag(t *testing.T) {
	for _, args := range [][]string{{"serve", "--help"}, {"serve", "-h"}, {"help", "serve"}} {
		r := invoke(t, context.Background(), nil, "", args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		for _, f := range []struct{ flag, env string }{
			{"config", "WATERSPOUT_CONFIG"}, {"addr", "WATERSPOUT_ADDR"}, {"api-key", "WATERSPOUT_API_KEYS"},
			{"allowed-origin", "WATERSPOUT_ALLOWED_ORIGINS"}, {"broker", "WATERSPOUT_BROKER"},
			{"redis-url", "WATERSPOUT_REDIS_URL"}, {"redis-sentinel", "WATERSPOUT_REDIS_SENTINELS"},
			{"redis-master", "WATERSPOUT_REDIS_MASTER"}, {"redis-cluster", "WATERSPOUT_REDIS_CLUSTER"},
			{"redis-allow-eviction", "WATERSPOUT_REDIS_ALLOW_EVICTION"}, {"ping", "WATERSPOUT_PING"}, {"poll-timeout", "WATERSPOUT_POLL_TIMEOUT"},
			{"write-timeout", "WATERSPOUT_WRITE_TIMEOUT"}, {"shutdown-timeout", "WATERSPOUT_SHUTDOWN_TIMEOUT"},
			{"trusted-proxy", "WATERSPOUT_TRUSTED_PROXIES"}, {"max-message-bytes", "WATERSPOUT_MAX_MESSAGE_BYTES"},
			{"max-channels", "WATERSPOUT_MAX_CHANNELS"}, {"max-queue-bytes", "WATERSPOUT_MAX_QUEUE_BYTES"},
			{"sockjs-sticky-cookie", "WATERSPOUT_SOCKJS_STICKY_COOKIE"},
			{"log-level", "WATERSPOUT_LOG_LEVEL"}, {"log-format", "WATERSPOUT_LOG_FORMAT"},
			{"max-connections-per-ip", "WATERSPOUT_MAX_CONNECTIONS_PER_IP"}, {"connects-per-second", "WATERSPOUT_CONNECTS_PER_SECOND"},
			{"connect-burst", "WATERSPOUT_CONNECT_BURST"}, {"publishes-per-second", "WATERSPOUT_PUBLISHES_PER_SECOND"},
			{"publish-burst", "WATERSPOUT_PUBLISH_BURST"}, {"commands-per-second", "WATERSPOUT_COMMANDS_PER_SECOND"},
			{"command-burst", "WATERSPOUT_COMMAND_BURST"}, {"token-hmac-secret-file", "WATERSPOUT_TOKEN_HMAC_SECRET_FILE"},
			{"token-issuer", "WATERSPOUT_TOKEN_ISSUER"}, {"token-audience", "WATERSPOUT_TOKEN_AUDIENCE"},
			{"token-leeway", "WATERSPOUT_TOKEN_LEEWAY"},
		} {
			if !regexp.MustCompile(`(?m)^  --`+f.flag+`( |$)`).MatchString(r.stdout) || !strings.Contains(r.stdout, "env "+f.env) {
				t.Errorf("%v: help lacks --%s or %s", args, f.flag, f.env)
			}
		}
		if !strings.Contains(r.stdout, "env WATERSPOUT_TOKEN_HMAC_SECRET,") || strings.Contains(r.stdout, "--token-hmac-secret ") {
			t.Errorf("%v: the token secret is not an environment-only setting", args)
		}
	}
}

func TestServeRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--log-format", "text"}, &env{
			stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" },
		})
	}()
	// The log line is what an operator sees too; it names the bound port.
	addrRe := regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; {
		if m := addrRe.FindStringSubmatch(errOut.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no listening line in %q", errOut.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for path, contentType := range map[string]string{
		"/livez":                       "text/plain; charset=UTF-8",
		"/":                            "text/html; charset=utf-8",
		"/client/waterspout.js":        "text/javascript; charset=utf-8",
		"/client/waterspout.mjs":       "text/javascript; charset=utf-8",
		"/client/waterspout.legacy.js": "text/javascript; charset=utf-8",
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != contentType {
			t.Errorf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	cancel() // what SIGINT/SIGTERM do in main
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "shut down") {
		t.Errorf("no shutdown in the log: %s", errOut.String())
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr string
	}{
		{"unknown command", nil, []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"serve beyond loopback without key", nil, []string{"serve", "--addr", "0.0.0.0:0"}, 2, "refusing to listen on 0.0.0.0:0 without --api-key"},
		{"default command takes flags", nil, []string{"--addr", ":0"}, 2, "refusing to listen on :0"},
		{"env beyond loopback without key", map[string]string{"WATERSPOUT_ADDR": "0.0.0.0:0"}, []string{"serve"}, 2, "refusing to listen"},
		{"unknown serve flag", nil, []string{"serve", "--nope"}, 2, "not defined"},
		{"bad duration", nil, []string{"serve", "--ping", "soon"}, 2, "--ping"},
		{"redis URL of another scheme", nil, []string{"serve", "--broker", "redis", "--redis-url", "http://not-redis"}, 1, "redis broker"},
		{"weak token secret", map[string]string{"WATERSPOUT_TOKEN_HMAC_SECRET": "short"}, []string{"serve"}, 2, "shorter than 32 bytes"},
		{"missing token secret file", nil, []string{"serve", "--token-hmac-secret-file", "/nonexistent/secret"}, 2, "secret file"},
		{"version takes no argument", nil, []string{"version", "x"}, 2, "unexpected argument"},
		{"help for unknown", nil, []string{"help", "nope"}, 2, `no help for "nope"`},
		{"unknown bench peer", nil, []string{"bench", "--peer", "nchan,mercure"}, 2, `--peer "mercure"`},
		{"bench peer twice", nil, []string{"bench", "--peer", "centrifugo,centrifugo"}, 2, "names centrifugo twice"},
		{"peer-url with two peers", nil, []string{"bench", "--peer", "nchan,centrifugo", "--peer-url", "http://127.0.0.1:1"}, 2,
			"--peer-url needs exactly one --peer"},
		{"peer-pid without a peer", nil, []string{"bench", "--peer-pid", "1"}, 2, "--peer-pid needs exactly one --peer"},
		// --peer-url is the one peer's URL: Centrifugo's here.
		{"peer-url names the one peer's", nil, []string{"bench", "--peer", "centrifugo", "--peer-url", "ws://x"}, 2, `centrifugo URL "ws://x"`},
		{"bad centrifugo url", nil, []string{"bench", "--peer", "nchan,centrifugo", "--centrifugo-url", "ws://y"}, 2, `centrifugo URL "ws://y"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invoke(t, context.Background(), tt.env, "", tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d: %s", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		r := invoke(t, context.Background(), nil, "", args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d", args, r.code)
		}
		for _, c := range commands() {
			if !strings.Contains(r.stdout, "  "+c.name+" ") {
				t.Errorf("%v: help lacks %s", args, c.name)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	r := invoke(t, context.Background(), nil, "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "waterspout ") || !strings.Contains(r.stdout, runtime.Version()) {
		t.Errorf("version: %d %q", r.code, r.stdout)
	}
	tests := []struct {
		name string
		v    string
		rev  string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", "", "", nil, "waterspout devel (" + runtime.Version() + ")"},
		{"ldflags win", "v1.2.3", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.9.0"}}, "waterspout v1.2.3 (" + runtime.Version() + ")"},
		{"module version", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.9.0"}}, "waterspout v0.9.0 (" + runtime.Version() + ")"},
		{"devel with vcs", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"},
		}}, "waterspout devel (0123456789ab-dirty, " + runtime.Version() + ")"},
		{"ldflags commit wins over vcs", "v0.1.0", "fedcba9876543210", &debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"},
		}}, "waterspout v0.1.0 (fedcba987654, " + runtime.Version() + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := buildinfo.String(tt.v, tt.rev, tt.bi); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args []string
		pos  []string
		x    string
	}{
		{[]string{"a", "b"}, []string{"a", "b"}, ""},
		{[]string{"-x", "1", "a", "b"}, []string{"a", "b"}, "1"},
		{[]string{"a", "-x", "1", "b"}, []string{"a", "b"}, "1"},
		{[]string{"a", "b", "--x=1"}, []string{"a", "b"}, "1"},
		{[]string{"a", "--", "-x", "b"}, []string{"a", "-x", "b"}, ""},
		{[]string{"--", "-1"}, []string{"-1"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			x := fs.String("x", "", "")
			pos, err := parseInterspersed(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(pos) != fmt.Sprint(tt.pos) || *x != tt.x {
				t.Errorf("got %q x=%q, want %q x=%q", pos, *x, tt.pos, tt.x)
			}
		})
	}
}
