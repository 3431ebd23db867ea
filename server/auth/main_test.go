package auth

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package when tests leave goroutines behind (expiry
// timers that fire after their test, brokers never closed).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := checkLeaks(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func checkLeaks() error {
	var stacks string
	for range 50 {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		leaked := 0
		for _, g := range strings.Split(stacks, "\n\n") {
			if (strings.Contains(g, "waterspout/server/auth.") || strings.Contains(g, "waterspout/session.")) &&
				!strings.Contains(g, "TestMain") && !strings.Contains(g, "checkLeaks") {
				leaked++
			}
		}
		if leaked == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("leaked goroutines:\n%s", stacks)
}
