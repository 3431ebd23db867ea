package netconn

import (
	"testing"

	"github.com/waterspout/waterspout/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }
