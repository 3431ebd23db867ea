package auth

import (
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/testclock"
)

// TestKeyedLimiterRetryAfterEdges: a clock that went back earns nothing
// (the wait is not shortened by it), and a key dropped from the table has
// a full bucket again, so no wait.
func TestKeyedLimiterRetryAfterEdges(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	l := NewKeyedLimiter(2, 4, 1, clock.Now)
	if !l.AllowN("k", 4) {
		t.Fatal("4 of 4 refused")
	}
	clock.Advance(-time.Hour)
	if got := l.RetryAfter("k", 1); got != 500*time.Millisecond {
		t.Errorf("after the clock went back an hour: %v, want 500ms", got)
	}
	clock.Advance(time.Hour)
	if l.Allow("other") != true || l.Len() != 1 { // the table holds 1 key: k is dropped
		t.Fatal("a new key refused, or k kept")
	}
	if got := l.RetryAfter("k", 1); got != 0 {
		t.Errorf("a dropped key waits %v, want 0 (it starts again full)", got)
	}
}
