package brokertest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/testlog"
)

// RedisServer is a redis-server process started by a test: loopback only, no
// persistence, in a temporary directory. It is killed when the test ends.
type RedisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	out  *testlog.Buffer
	wait chan error
	args []string // extra redis-server arguments, after the defaults
	// sentinelConf, when set, makes this a Sentinel: the initial content
	// of its config file (Sentinel rewrites it as it learns).
	sentinelConf string
}

// StartRedis starts a redis-server for the test and returns its URL and a
// function that kills it (also called when the test ends). Without
// redis-server installed the test is skipped, or failed when CI is set.
func StartRedis(t testing.TB) (url string, stop func()) {
	t.Helper()
	s := StartRedisServer(t)
	return s.URL(), s.Stop
}

// StartRedisServer is StartRedis with control over the process, for tests
// that stop and restart Redis on the same port.
func StartRedisServer(t testing.TB) *RedisServer {
	t.Helper()
	return StartRedisServerArgs(t)
}

// StartRedisServerArgs is StartRedisServer with extra redis-server
// arguments, which override the defaults (for example "--appendonly",
// "yes"). The data directory is kept across Restart, so a server with
// persistence comes back with what it saved.
func StartRedisServerArgs(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	return startRedisServer(t, "", args)
}

func startRedisServer(t testing.TB, sentinelConf string, args []string) *RedisServer {
	t.Helper()
	bin := redisBinary()
	if bin == "" {
		const msg = "redis-server is not installed (Debian package redis-server: apt-get install redis-server)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &RedisServer{t: t, bin: bin, dir: t.TempDir(), args: args, sentinelConf: sentinelConf}
	t.Cleanup(s.Stop)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, err = freePort(); err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("start redis-server: %v", err)
	return nil
}

func redisBinary() string {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/redis-server"); err == nil {
		return "/usr/sbin/redis-server"
	}
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr returns host:port.
func (s *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the TCP port.
func (s *RedisServer) Port() int { return s.port }

// Dir returns the data directory.
func (s *RedisServer) Dir() string { return s.dir }

// URL returns the redis:// URL of database 0.
func (s *RedisServer) URL() string { return "redis://" + s.Addr() + "/0" }

// Stop kills the server (SIGKILL, so nothing is saved) and waits for it to
// exit. It does nothing when the server is not running.
func (s *RedisServer) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.wait
	s.cmd = nil
}

// Pause stops the server with SIGSTOP: it keeps its connections and
// answers nothing, as a Redis stuck in a long command or a swap storm.
func (s *RedisServer) Pause() { s.signal(sigStop) }

// Resume continues a paused server.
func (s *RedisServer) Resume() { s.signal(sigCont) }

func (s *RedisServer) signal(sig os.Signal) {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("signal to a redis-server that is not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal redis-server: %v", err)
	}
}

// Restart starts the server again on the same port, with what its
// persistence kept in its directory (nothing by default, as after a crash of
// a Redis without persistence). It fails the test if the server does not
// come up.
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	// The old process's port can take a moment to be reusable.
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("restart redis-server on port %d: %v", s.port, err)
}

func (s *RedisServer) start() error {
	s.out = &testlog.Buffer{}
	args := append([]string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--loglevel", "warning"}, s.args...)
	if s.sentinelConf != "" {
		conf := filepath.Join(s.dir, "sentinel.conf")
		if _, err := os.Stat(conf); err != nil {
			if err := os.WriteFile(conf, []byte(s.sentinelConf), 0o600); err != nil {
				return err
			}
		}
		args = append([]string{conf, "--sentinel",
			"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
			"--daemonize", "no", "--loglevel", "warning"}, s.args...)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return err
	}
	wait := make(chan error, 1)
	go func() { wait <- cmd.Wait() }()
	deadline := time.Now().Add(WaitTimeout)
	for {
		if err := ping(s.Addr()); err == nil {
			s.cmd, s.wait = cmd, wait
			return nil
		}
		select {
		case err := <-wait:
			return fmt.Errorf("redis-server exited (%v): %s", err, strings.TrimSpace(s.out.String()))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-wait
			return fmt.Errorf("redis-server did not answer PING within %v: %s", WaitTimeout, s.out.String())
		}
	}
}

// ping sees that the server is up.
func ping(addr string) error {
	line, err := command(addr, "PING", func(string) bool { return true })
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// command sends cmd to the server at addr in bare RESP and reads the
// reply's lines until last says one is the line wanted, which it returns.
// It speaks just enough RESP for the starters to see that a server is up,
// so that this package does not depend on a client library.
func command(addr, cmd string, last func(line string) bool) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if last(line) {
			return line, nil
		}
	}
}
