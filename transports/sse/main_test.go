package sse

import (
	"testing"

	"github.com/waterspout/waterspout/internal/leaktest"
)

// TestMain fails the package when tests leave goroutines behind.
func TestMain(m *testing.M) { leaktest.Main(m, "github.com/r3labs/sse") }
