package leaktest

import (
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// TestCheck: a goroutine of this module that outlives the check is reported;
// once it ends, the check passes.
func TestCheck(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); <-stop }()
	if err := Check(50 * time.Millisecond); err == nil {
		t.Fatal("a running goroutine of this module was not reported")
	}
	close(stop)
	<-done
	if err := Check(time.Second); err != nil {
		t.Fatalf("after the goroutine ended: %v", err)
	}
}
