package transports

import (
	"testing"

	"github.com/waterspout/waterspout/internal/leaktest"
)

// TestMain fails the package when a test leaves a goroutine behind: a
// pump's writer, a shared writer, a parked connection.
func TestMain(m *testing.M) { leaktest.Main(m) }
