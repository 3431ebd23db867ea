package bench

import (
	"bytes"
	"context"
	"fmt"
	"go/build"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/server"
)

// startServer serves a WaterSpout server in this process on loopback.
func startServer(t *testing.T) *Target {
	t.Helper()
	// One load generator is one client address: per-address limits are
	// policy, not cost, and would refuse it (as bench/server.json does for
	// `waterspout serve`).
	return startServerLimits(t, server.RateLimits{
		ConnectionsPerIP: server.NoLimit, ConnectsPerSecond: server.NoLimit,
		PublishesPerSecond: server.NoLimit, CommandsPerSecond: server.NoLimit,
	})
}

// startServerLimits is startServer with the given rate limits (zero
// fields: the defaults).
func startServerLimits(t *testing.T, limits server.RateLimits) *Target {
	t.Helper()
	s, err := server.New(server.Config{
		Addr: "127.0.0.1:0", APIKeys: []string{"bench-smoke-test-key"},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		RateLimits: limits,
	})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ts := wiretest.Serve(t, s)
	// The server is this process: its memory and CPU include the load
	// generator's, which is fine for a correctness check.
	return &Target{Kind: KindWaterSpout, URL: ts.URL, APIKey: "bench-smoke-test-key", PID: os.Getpid()}
}

// runSmoke runs one scenario in smoke mode and fails on any correctness
// problem. It asserts no timing.
func runSmoke(t *testing.T, target Target, scenario string, peers ...*Target) *Report {
	t.Helper()
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{
		Target: target, Peers: peers, Scenarios: []string{scenario}, Smoke: true, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, progress.String())
	}
	if probs := rep.Problems(); len(probs) > 0 {
		t.Errorf("problems:\n%s\nprogress:\n%s", strings.Join(probs, "\n"), progress.String())
	}
	var tables bytes.Buffer
	if err := WriteTables(&tables, rep); err != nil {
		t.Fatalf("WriteTables: %v", err)
	}
	return rep
}

// TestSmoke runs every scenario, tiny, against a real server: every message
// delivered once and in order, every resume recovered, no errors.
func TestSmoke(t *testing.T) {
	target := startServer(t)
	// What each scenario must report against WaterSpout: one result per
	// transport it covers.
	type smokeCase struct {
		scenario   string
		transports []string
	}
	tests := []smokeCase{
		{ScenarioIdle, []string{TransportWS, TransportSSE, TransportPoll}},
		{ScenarioFanout, []string{TransportWS}},
		{ScenarioChannels, []string{TransportWS}},
		{ScenarioPublish, []string{transportHTTP, transportHTTPBatch}},
		{ScenarioFanoutSSE, []string{TransportSSE}},
		{ScenarioFanoutPoll, []string{TransportPoll}},
		{ScenarioReconnect, []string{TransportWS}},
		{ScenarioSlow, []string{TransportWS}},
		{ScenarioStalled, []string{TransportSSE}},
	}
	if runtime.GOOS == "linux" {
		tests = append(tests, smokeCase{ScenarioFloor, []string{"tcp"}}) // S0 needs epoll and /proc
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			rep := runSmoke(t, *target, tt.scenario)
			var got []string
			for _, r := range rep.Results {
				got = append(got, r.Transport)
			}
			if strings.Join(got, ",") != strings.Join(tt.transports, ",") {
				t.Errorf("results for transports %v, want %v", got, tt.transports)
			}
			if tt.scenario == ScenarioPublish && len(rep.Results) == 2 {
				checkBatchStep(t, rep)
			}
		})
	}
}

// checkBatchStep checks S4's batch step went through POST /api/batch:
// DefaultBatch publications a request, every one published, and the
// tables compare it with the single step.
func checkBatchStep(t *testing.T, rep *Report) {
	t.Helper()
	single, batch := rep.Results[0].Publish, rep.Results[1].Publish
	if single.Batch != 0 || single.Requests != single.OK {
		t.Errorf("single step: %+v", single)
	}
	if batch.Batch != DefaultBatch || batch.Requests == 0 || batch.OK != batch.Requests*DefaultBatch || batch.Errors != 0 {
		t.Errorf("batch step: %+v, want %d publications per request, all published", batch, DefaultBatch)
	}
	var tables bytes.Buffer
	if err := WriteTables(&tables, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| waterspout | batch of 100 |", "S4 batch ÷ single"} {
		if !strings.Contains(tables.String(), want) {
			t.Errorf("the tables lack %q:\n%s", want, tables.String())
		}
	}
}

// TestSmokeNAT runs S9, tiny, against a server at its default limits, as
// the scenario is meant to be run: every message delivered, no 429.
func TestSmokeNAT(t *testing.T) {
	rep := runSmoke(t, *startServerLimits(t, server.RateLimits{}), ScenarioNAT)
	if len(rep.Results) != 1 || rep.Results[0].NAT == nil || rep.Results[0].NAT.Step.Delivered == 0 {
		t.Fatalf("results %+v, want one S9 measurement", rep.Results)
	}
}

// TestSmokeRounds runs S2 twice: both rounds are reported, numbered, and
// correct.
func TestSmokeRounds(t *testing.T) {
	target := startServer(t)
	rep, err := Run(context.Background(), Config{Target: *target, Scenarios: []string{ScenarioFanout}, Smoke: true, Rounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if probs := rep.Problems(); len(probs) > 0 {
		t.Errorf("problems:\n%s", strings.Join(probs, "\n"))
	}
	var rounds []int
	for _, r := range rep.Results {
		rounds = append(rounds, r.Round)
	}
	if len(rounds) != 2 || rounds[0] != 1 || rounds[1] != 2 {
		t.Errorf("rounds %v, want [1 2]", rounds)
	}
	var tables bytes.Buffer
	if err := WriteTables(&tables, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tables.String(), KindWaterSpout+" #2") {
		t.Errorf("the tables do not name round 2:\n%s", tables.String())
	}
}

// TestSmokeNchan runs the scenarios Nchan supports against nginx with the
// peer configuration kept in bench/peers, when nginx and the Nchan module
// are installed (Debian: nginx libnginx-mod-nchan).
func TestSmokeNchan(t *testing.T) {
	// CI runs every test (scripts/test installs both); elsewhere a missing
	// peer is a skip that says what to install.
	missing := func(what string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (Debian: nginx libnginx-mod-nchan); CI runs this test", what)
		}
		t.Skipf("%s is not installed (Debian: nginx libnginx-mod-nchan)", what)
	}
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
		if _, serr := os.Stat(nginx); serr != nil {
			missing("nginx")
		}
	}
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_nchan_module.so"); err != nil {
		missing("the Nchan module")
	}
	peer := startNchan(t, nginx)
	target := startServer(t)
	for _, scenario := range Scenarios {
		t.Run(scenario, func(t *testing.T) {
			rep := runSmoke(t, *target, scenario, peer)
			for _, r := range rep.Results {
				if r.Target == KindNchan && (!peer.supports(r.Transport) || r.Transport == transportHTTPBatch) {
					t.Errorf("%s ran over %s, which Nchan is not driven over", scenario, r.Transport)
				}
			}
		})
	}
}

// startNchan runs nginx with bench/peers/nchan.conf on a free port.
func startNchan(t *testing.T, nginx string) *Target {
	t.Helper()
	conf, err := os.ReadFile(filepath.Join("..", "..", "bench", "peers", "nchan.conf"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	dir := t.TempDir()
	for _, d := range []string{"logs", "temp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf = bytes.Replace(conf, []byte("listen 127.0.0.1:8081"), []byte("listen 127.0.0.1:"+port), 1)
	confPath := filepath.Join(dir, "nchan.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + port
	pid := startPeer(t, exec.Command(nginx, "-c", confPath, "-p", dir, "-g", "daemon off;"), addr, 10*time.Second)
	return &Target{Kind: KindNchan, URL: "http://" + addr, PID: pid}
}

// freePort returns a loopback port nothing listens on right now, for a
// peer's server to take.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// startPeer starts a peer's server, stops it when t ends, and waits up to
// wait for it to listen on addr; it returns the process id.
func startPeer(t *testing.T, cmd *exec.Cmd, addr string, wait time.Duration) int {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(wait)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s: %v\n%s", cmd.Path, addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// centrifugoInstall is how scripts/test and scripts/bench install the
// Centrifugo the bench drives.
const centrifugoInstall = "go install github.com/centrifugal/centrifugo/v6@v6.9.1"

// TestSmokeCentrifugo runs every scenario against Centrifugo with the peer
// configuration kept in bench/peers: each must report a correct result
// over the transports Centrifugo is driven over, and none over the others.
// Centrifugo is the only server here: the scenarios' WaterSpout side is
// TestSmoke's, and running beside a peer is TestSmokeNchan's.
func TestSmokeCentrifugo(t *testing.T) {
	bin, err := exec.LookPath("centrifugo")
	if err != nil {
		bin = filepath.Join(build.Default.GOPATH, "bin", "centrifugo")
		if _, serr := os.Stat(bin); serr != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("centrifugo is not installed (%s); CI runs this test", centrifugoInstall)
			}
			t.Skipf("centrifugo is not installed (%s)", centrifugoInstall)
		}
	}
	peer := startCentrifugo(t, bin)
	want := map[string][]string{
		ScenarioIdle: {TransportWS, TransportSSE}, ScenarioFanout: {TransportWS}, ScenarioChannels: {TransportWS},
		ScenarioPublish: {"http"}, ScenarioFanoutSSE: {TransportSSE}, ScenarioSlow: {TransportWS},
		ScenarioStalled: {TransportSSE}, ScenarioReconnect: {TransportWS},
		// No long-poll.
		ScenarioFanoutPoll: nil, ScenarioNAT: nil,
	}
	for _, scenario := range Scenarios {
		w, ok := want[scenario]
		if !ok {
			continue // the floor runs against no server
		}
		t.Run(scenario, func(t *testing.T) {
			rep := runSmoke(t, *peer, scenario)
			var got []string
			for _, r := range rep.Results {
				got = append(got, r.Transport)
			}
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("results over %v, want %v", got, w)
			}
		})
	}
}

// startCentrifugo runs Centrifugo with bench/peers/centrifugo.json on a
// free port; the port and the API key come from the environment, which
// overrides the file, as in scripts/bench.
func startCentrifugo(t *testing.T, bin string) *Target {
	t.Helper()
	conf, err := filepath.Abs(filepath.Join("..", "..", "bench", "peers", "centrifugo.json"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	const key = "bench-smoke-centrifugo-key"
	cmd := exec.Command(bin, "--config", conf)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "CENTRIFUGO_HTTP_SERVER_PORT="+port, "CENTRIFUGO_HTTP_API_KEY="+key)
	addr := "127.0.0.1:" + port
	pid := startPeer(t, cmd, addr, 20*time.Second)
	return &Target{Kind: KindCentrifugo, URL: "http://" + addr, APIKey: key, PID: pid}
}
