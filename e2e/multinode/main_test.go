package multinode

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain provides the directory for the binary the tests build, and fails
// the package when a client goroutine or an HTTP connection outlives its
// test.
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
		if err := checkLeaks(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func checkLeaks() error {
	var leaked []string
	for i := 0; i < 100; i++ {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		leaked = leaked[:0]
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "TestMain") || strings.Contains(g, "checkLeaks") {
				continue
			}
			if strings.Contains(g, "e2e/multinode.") || strings.Contains(g, "net/http.(*persistConn)") ||
				strings.Contains(g, "os/exec.(*Cmd)") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("leaked goroutines:\n%s", strings.Join(leaked, "\n\n"))
}
