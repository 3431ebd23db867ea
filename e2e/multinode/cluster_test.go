package multinode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session/brokertest"
)

const (
	// apiKey is every node's API key. With a key the API accepts requests that
	// came through a proxy (X-Forwarded-For), as in production.
	apiKey = "multinode-test-api-key-0123456789"
	// startTimeout bounds the start of one process.
	startTimeout = 15 * time.Second
	// historySize is far above what a reconnect can miss at the test's rates,
	// so that every resume is served from history.
	historySize = 20000
)

// tmpRoot holds the binary built for the whole package; TestMain removes it.
var tmpRoot string

var (
	buildOnce sync.Once
	binPath   string
	errBuild  error
)

// requireTools skips the test when haproxy or redis-server is missing, or
// fails it under CI, where the scale-out test must run.
func requireTools(t *testing.T, haproxy bool) {
	t.Helper()
	need := map[string]string{"redis-server": "redis-server"}
	if haproxy {
		need["haproxy"] = "haproxy"
	}
	for bin, pkg := range need {
		if toolPath(bin) != "" {
			continue
		}
		msg := fmt.Sprintf("%s is not installed (Debian package %s: apt-get install -y %s)", bin, pkg, pkg)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func toolPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// waterspoutBinary builds cmd/waterspout once per package run. The binary is
// built without -race even when the tests run with it: the nodes are the
// system under load here, and the race detector runs on them in their own
// packages' tests.
func waterspoutBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			errBuild = err
			return
		}
		goTool := "go"
		if p, err := exec.LookPath("go"); err == nil {
			goTool = p
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		binPath = filepath.Join(tmpRoot, "waterspout")
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", binPath, "./cmd/waterspout")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			errBuild = fmt.Errorf("go build ./cmd/waterspout: %w\n%s", err, out)
		}
	})
	if errBuild != nil {
		t.Fatal(errBuild)
	}
	return binPath
}

// moduleRoot walks up from the package directory (the test's working
// directory) to the go.mod of the module.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/waterspout/waterspout\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod of github.com/waterspout/waterspout above the test")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is a child process whose output is kept for the failure report.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{}
	err    error // valid once exited is closed
}

func startProcess(name, bin string, args ...string) (*process, error) {
	p := &process{name: name, out: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// kill sends SIGKILL and waits for the process to be gone. It may be called
// more than once.
func (p *process) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// node is one `waterspout serve` process.
type node struct {
	*process
	addr string
}

func (n *node) url() string { return "http://" + n.addr }

// cluster is Redis, nodes on it, and optionally haproxy in front of them.
type cluster struct {
	redis *brokertest.RedisServer
	nodes []*node
	proxy *process
	// lb is the URL of haproxy, when there is one.
	lb string
	// bin and cfgPath start the nodes (addNode).
	bin, cfgPath string
}

// urls returns the nodes' base URLs, in order.
func (c *cluster) urls() []string {
	out := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = nd.url()
	}
	return out
}

// startCluster starts redis-server, n nodes on it and, when withProxy is set,
// haproxy in front of them; it waits until every node and haproxy answer
// /readyz. Everything is killed when the test ends; a failed test logs the
// tail of each process's output.
func startCluster(t *testing.T, n int, withProxy bool) *cluster {
	t.Helper()
	requireTools(t, withProxy)
	rs := brokertest.StartRedisServer(t)
	c := startNodes(t, n, withProxy, "--redis-url", rs.URL())
	c.redis = rs
	return c
}

// startNodes starts n nodes whose broker flags are brokerArgs (where Redis
// is) and, when withProxy is set, haproxy in front of them.
func startNodes(t *testing.T, n int, withProxy bool, brokerArgs ...string) *cluster {
	t.Helper()
	bin := waterspoutBinary(t)
	c := &cluster{}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "waterspout.json")
	cfg := map[string]any{
		"apiKeys":        []string{apiKey},
		"trustedProxies": []string{"127.0.0.1/32"},
		"namespaces": []map[string]any{
			{"name": "", "historySize": historySize, "historyTTL": "10m", "anonymous": true},
			{"name": "room", "anonymous": true, "presence": true, "joinLeave": true},
		},
		// Connection tokens name the users of the presence tests.
		"tokens": map[string]any{"keys": []map[string]any{{"secret": tokenSecret}}},
		// A long-poll client leaves 2 s after its last poll ends.
		"presence": map[string]any{"pollLease": "2s"},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c.bin, c.cfgPath = bin, cfgPath
	for range n {
		c.addNode(t, brokerArgs...)
	}
	if withProxy {
		c.startHAProxy(t, dir)
	}
	return c
}

// addNode starts one more node, with its own broker flags, and returns it.
// haproxy, if there is one, does not know of it.
func (c *cluster) addNode(t *testing.T, brokerArgs ...string) *node {
	t.Helper()
	nd, err := startNode(c.bin, fmt.Sprintf("node%d", len(c.nodes)+1), c.cfgPath, brokerArgs...)
	if err != nil {
		t.Fatal(err)
	}
	c.nodes = append(c.nodes, nd)
	t.Cleanup(func() { dumpOnFailure(t, nd.process) })
	t.Cleanup(nd.kill)
	return nd
}

func startNode(bin, name, cfgPath string, brokerArgs ...string) (*node, error) {
	var last error
	// The free port can be taken between freePort and the node's listen.
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p, err := startProcess(name, bin, append([]string{"serve", "--config", cfgPath, "--addr", addr,
			"--broker", "redis", "--log-level", "warn"}, brokerArgs...)...)
		if err != nil {
			return nil, err
		}
		nd := &node{process: p, addr: addr}
		if last = waitReady(nd.url(), p); last == nil {
			return nd, nil
		}
		p.kill()
	}
	return nil, fmt.Errorf("start %s: %w", name, last)
}

// waitReady polls base/readyz until it answers 200, the process exits or
// startTimeout passes.
func waitReady(base string, p *process) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v): %s", p.name, p.err, p.out.tail(2000))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s/readyz within %v: %s", p.name, base, startTimeout, p.out.tail(2000))
		}
	}
}

// haproxyTemplate is the configuration docs/OPERATIONS.md recommends, with
// the listen address and the nodes filled in: round-robin with no
// stickiness, /readyz health checks, redispatch of failed connects, and
// timeouts above the heartbeat (SSE, WebSocket) and poll intervals. SockJS
// alone is pinned, by the session id in its URLs.
var haproxyTemplate = template.Must(template.New("haproxy").Parse(`global
    # Two file descriptors per proxied connection: raise the process's open
    # file limit to match.
    maxconn {{.MaxConn}}
    # Health changes (notice) only; "info" would log every request.
    log stderr format iso local0 notice

defaults
    mode http
    log global
    option forwardfor
    # Stream frames at once: without it haproxy lets the kernel hold a
    # small chunk up to 200 ms hoping for more (SSE, SockJS streaming).
    option http-no-delay
    timeout connect 3s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout http-request 10s
    timeout client-fin 5s
    timeout server-fin 5s
    retries 2
    option redispatch 1
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    default-server check inter 1s fastinter 250ms downinter 500ms rise 2 fall 2

frontend waterspout
    bind {{.Listen}}
    use_backend waterspout_sockjs if { path_beg /connect/sockjs/ }
    default_backend waterspout_nodes

backend waterspout_nodes
    balance roundrobin
{{- range .Servers}}
    server {{.Name}} {{.Addr}}
{{- end}}

backend waterspout_sockjs
    balance uri depth 4
    hash-type consistent
{{- range .Servers}}
    server {{.Name}} {{.Addr}}
{{- end}}
`))

type haproxyServer struct{ Name, Addr string }

func (c *cluster) startHAProxy(t *testing.T, dir string) {
	t.Helper()
	bin := toolPath("haproxy")
	var servers []haproxyServer
	for _, nd := range c.nodes {
		servers = append(servers, haproxyServer{Name: nd.name, Addr: nd.addr})
	}
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var cfg bytes.Buffer
		if err := haproxyTemplate.Execute(&cfg, map[string]any{"Listen": listen, "Servers": servers, "MaxConn": 2000}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(path, cfg.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		// -db: stay in the foreground, so that killing the process ends it.
		p, err := startProcess("haproxy", bin, "-db", "-f", path)
		if err != nil {
			t.Fatal(err)
		}
		if last = waitReady("http://"+listen, p); last == nil {
			c.proxy, c.lb = p, "http://"+listen
			t.Cleanup(func() { dumpOnFailure(t, p) })
			t.Cleanup(p.kill)
			return
		}
		p.kill()
	}
	t.Fatalf("start haproxy: %v", last)
}

// connections returns the node's open sessions by transport, read from its
// metrics.
func (n *node) connections(ctx context.Context) (map[string]int, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	r, err := wiretest.Do(ctx, client, http.MethodGet, n.url()+"/metrics", nil, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", n.name, err)
	}
	out := map[string]int{}
	const prefix = `waterspout_connections{transport="`
	for _, line := range strings.Split(r.Body, "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		transport, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %q: %w", n.name, line, err)
		}
		out[transport] = int(v)
	}
	return out, nil
}

// logHealth logs haproxy's health check verdicts (servers marked DOWN or UP)
// relative to an event.
func (c *cluster) logHealth(t *testing.T, since time.Time, event string) {
	t.Helper()
	changes := 0
	for _, line := range strings.Split(c.proxy.out.tail(64<<10), "\n") {
		stamp, msg, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(msg, "Server ") {
			continue // not a log line, or the same event printed as a warning
		}
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			continue
		}
		msg, _, _ = strings.Cut(msg, ",")
		t.Logf("haproxy, %v after %s: %s", at.Sub(since).Round(time.Millisecond), event, msg)
		changes++
	}
	if changes == 0 {
		t.Logf("haproxy marked no server DOWN or UP")
	}
}

func dumpOnFailure(t *testing.T, p *process) {
	if t.Failed() {
		t.Logf("--- %s output (tail) ---\n%s", p.name, p.out.tail(4000))
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) > n {
		return "…" + string(b.buf[len(b.buf)-n:])
	}
	return string(b.buf)
}
