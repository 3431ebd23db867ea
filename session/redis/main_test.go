package redis

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waterspout/waterspout/internal/leaktest"
)

// TestMain fails the package when tests leave goroutines behind: a broker
// that is closed must stop its receiver and go-redis's connections.
func TestMain(m *testing.M) {
	// go-redis logs failed dials through a process-wide logger; the tests
	// provoke plenty of them on purpose.
	goredis.SetLogger(quietLogger{})
	leaktest.Main(m, "github.com/redis/go-redis/")
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
