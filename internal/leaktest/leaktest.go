package leaktest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// module is what a goroutine's stack names when it runs this module's code.
const module = "github.com/waterspout/waterspout/"

// Main runs the tests, then waits up to two seconds for every goroutine
// running this module's code, or the code of any package named in also
// (for example "github.com/gorilla/websocket"), to end. It exits non-zero
// if one is still running, printing the stacks.
func Main(m *testing.M, also ...string) {
	code := m.Run()
	if code == 0 {
		if err := Check(2*time.Second, also...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Check waits up to within for the watched goroutines to end.
func Check(within time.Duration, also ...string) error {
	watch := append([]string{module}, also...)
	deadline := time.Now().Add(within)
	for {
		leaked := leaks(watch)
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leaktest: %d goroutines left behind:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leaks(watch []string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "leaktest.leaks(") || strings.Contains(g, "testing.(*M).Run") || strings.Contains(g, ".TestMain(") {
			continue // this check, and the test runner itself
		}
		for _, w := range watch {
			if strings.Contains(g, w) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}
