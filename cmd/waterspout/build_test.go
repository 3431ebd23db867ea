package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The release build: what the Dockerfile runs, so that these tests prove
// the image's properties where no container runtime can build it. The
// commit is passed with -X as the Dockerfile does, since its build context
// has no .git (and a build with -buildvcs=false, or in a git worktree,
// gets no vcs.revision either).
const releaseVersion = "v0.1.0-test"

// TestReleaseBuild builds cmd/waterspout as the Dockerfile does (static,
// no cgo, version stamped through -ldflags) and checks the binary.
func TestReleaseBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; not in -short")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD (the release build stamps the commit from git): %v", err)
	}
	rev := strings.TrimSpace(string(head))
	bin := filepath.Join(t.TempDir(), "waterspout")
	cmd := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.version="+releaseVersion+" -X main.commit="+rev, "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("static", func(t *testing.T) { checkStatic(t, bin) })
	t.Run("version", func(t *testing.T) { checkVersion(t, bin, rev) })
	t.Run("as the container runs it", func(t *testing.T) { checkContainerRun(t, bin) })
}

// checkStatic checks the binary needs no dynamic loader, so it runs on a
// scratch or distroless image.
func checkStatic(t *testing.T, bin string) {
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary imports shared libraries %v", libs)
	}
}

// checkVersion checks `waterspout version` of a stamped build prints the
// version, the commit the tree is at and the Go version.
func checkVersion(t *testing.T, bin, rev string) {
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	want := "waterspout " + releaseVersion + " (" + rev[:12]
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, ", "+runtime.Version()+")") {
		t.Errorf("version printed %q, want %q…, %s)", got, want, runtime.Version())
	}
}

// dockerfile is the final stage of ../../Dockerfile: its base and its
// instructions, keyword upper-cased, continuation lines joined.
type dockerfile struct {
	build []string // instructions of the stages before the last
	base  string
	final []string
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var all []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		all = append(all, cur.String())
		cur.Reset()
	}
	var d dockerfile
	last := -1
	for i, ins := range all {
		if strings.HasPrefix(strings.ToUpper(ins), "FROM ") {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	d.build = all[:last]
	d.base = strings.Fields(all[last])[1]
	d.final = all[last+1:]
	return d
}

// instruction returns the arguments of the final stage's last instruction
// named kw ("" when there is none).
func (d dockerfile) instruction(kw string) string {
	got := ""
	for _, ins := range d.final {
		k, rest, _ := strings.Cut(ins, " ")
		if strings.EqualFold(k, kw) {
			got = strings.TrimSpace(rest)
		}
	}
	return got
}

// TestDockerfile checks what the image promises without building it (no
// registry is reachable here for the build stage's Go image): a static
// binary on an empty base, a user other than root, the health check run by
// the binary itself, listening on all interfaces.
func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t)
	if d.base != "scratch" {
		t.Errorf("final base %q: the release test proves a static binary for scratch", d.base)
	}
	user := d.instruction("USER")
	if name, _, _ := strings.Cut(user, ":"); user == "" || name == "root" || name == "0" {
		t.Errorf("USER %q: the image must not run as root", user)
	}
	if hc := d.instruction("HEALTHCHECK"); !strings.Contains(hc, `CMD ["/waterspout", "health"]`) {
		t.Errorf("HEALTHCHECK %q: want the binary's own health command (scratch has no shell)", hc)
	}
	if env := d.instruction("ENV"); !strings.Contains(env, "WATERSPOUT_ADDR=0.0.0.0:8080") {
		t.Errorf("ENV %q: want WATERSPOUT_ADDR=0.0.0.0:8080", env)
	}
	if ep := d.instruction("ENTRYPOINT"); ep != `["/waterspout"]` {
		t.Errorf("ENTRYPOINT %q", ep)
	}
	var build string
	for _, ins := range d.build {
		if strings.Contains(ins, "go build") {
			build = ins
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "./cmd/waterspout"} {
		if !strings.Contains(build, want) {
			t.Errorf("the build step %q lacks %q (TestReleaseBuild builds the same way)", build, want)
		}
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "**/node_modules"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(ignore) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// checkContainerRun runs the release binary the way the image does: the
// environment configures it, and `health` is the health check. The refusal
// is checked on the image's 0.0.0.0 address (refused before binding); the
// running server binds loopback, as every server in these tests does.
func checkContainerRun(t *testing.T, bin string) {
	const key = "container-test-key-0123456789"
	cmd := exec.Command(bin)
	cmd.Env = []string{"WATERSPOUT_ADDR=0.0.0.0:8080", "WATERSPOUT_LOG_FORMAT=json"}
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitUsage || !strings.Contains(string(out), "without --api-key") {
		t.Fatalf("without an API key on 0.0.0.0: exit %d (%v), %s; want 2 and a word about the API key", code, err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	environ := []string{"WATERSPOUT_ADDR=" + addr, "WATERSPOUT_LOG_FORMAT=json", "WATERSPOUT_API_KEYS=" + key}
	srv := exec.Command(bin)
	srv.Env = environ
	logs := &syncBuffer{}
	srv.Stderr = logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		<-exited
	})

	health := func() (int, string) {
		c := exec.Command(bin, "health")
		c.Env = environ
		out, _ := c.CombinedOutput()
		return c.ProcessState.ExitCode(), string(out)
	}
	waitFor(t, "the health check to pass", func() bool { code, _ := health(); return code == 0 }, logs.String)

	pub := exec.Command(bin, "publish", "news", `{"n":1}`, "--server", "http://"+addr)
	pub.Env = []string{"WATERSPOUT_API_KEY=" + key}
	out, err = pub.Output()
	var res struct{ Offset int }
	if err != nil || json.Unmarshal(out, &res) != nil || res.Offset != 1 {
		t.Fatalf("publish through the server: %v %s", err, out)
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30 s after SIGTERM")
	}
	exited <- nil // for the cleanup
	// Read the log once the process has exited: the server may log
	// "listening" after it already answers the health check.
	if !strings.Contains(logs.String(), `"msg":"listening"`) {
		t.Errorf("the log is not JSON lines with a listening record:\n%s", logs)
	}
	if code, out := health(); code != 1 || !strings.Contains(out, "unhealthy") {
		t.Errorf("health of a stopped server: exit %d %q, want 1 and unhealthy", code, out)
	}
}
