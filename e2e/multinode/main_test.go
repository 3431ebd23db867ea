package multinode

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/leaktest"
)

// TestMain provides the directory for the binary the tests build, and fails
// the package when a client goroutine, an HTTP connection or a child
// process's waiter outlives its test.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "waterspout-multinode-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := leaktest.Check(2*time.Second, "net/http.(*persistConn)", "os/exec.(*Cmd)"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}
