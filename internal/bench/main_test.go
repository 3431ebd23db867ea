package bench

import (
	"testing"

	"github.com/waterspout/waterspout/internal/leaktest"
)

// TestMain fails the package when tests leave goroutines behind: a
// subscriber's reader, a publisher worker, the server's writers, or a
// gorilla connection.
func TestMain(m *testing.M) { leaktest.Main(m, "github.com/gorilla/websocket") }
