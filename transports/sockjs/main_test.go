package sockjs

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package when tests leave goroutines behind: a bridge
// whose reader or writer outlives its session, a SockJS session never closed
// (sockjs-go keeps one goroutine per session until it closes).
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
	var leaked []string
	// sockjs-go lets a closed session linger for the disconnect delay (the
	// tests use testDisconnectDelay): wait well past it.
	for range 250 {
		buf := make([]byte, 4<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		leaked = leaked[:0]
		for _, g := range strings.Split(stacks, "\n\n") {
			if (strings.Contains(g, "github.com/waterspout/waterspout/") ||
				strings.Contains(g, "github.com/igm/sockjs-go") ||
				strings.Contains(g, "github.com/gorilla/websocket")) &&
				!strings.Contains(g, "TestMain") && !strings.Contains(g, "checkLeaks") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("leaked %d goroutines:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
}
