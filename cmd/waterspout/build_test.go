package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
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
