package redis

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestMain fails the package when tests leave goroutines behind: a broker
// that is closed must stop its receiver and go-redis's connections.
func TestMain(m *testing.M) {
	// go-redis logs failed dials to stderr through a process-wide logger;
	// the tests provoke plenty of them on purpose.
	goredis.SetLogger(quietLogger{})
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
	for i := 0; i < 100; i++ {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		leaked := 0
		for _, g := range strings.Split(stacks, "\n\n") {
			if (strings.Contains(g, "github.com/waterspout/waterspout/") || strings.Contains(g, "github.com/redis/go-redis/")) &&
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

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
