package server

import (
	"testing"
	"time"
)

// TestRetryAfterHeader: whole seconds, rounded up so that a client that
// waits that long passes, and at least 1 (0 would invite a retry at once).
func TestRetryAfterHeader(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1", -time.Second: "1", time.Nanosecond: "1", time.Second: "1", time.Second + time.Nanosecond: "2",
		1500 * time.Millisecond: "2", 31 * time.Second: "31", 99*time.Second + 100*time.Millisecond: "100",
	} {
		if got := retryAfter(d); got != want {
			t.Errorf("retryAfter(%v) = %q, want %q", d, got, want)
		}
	}
}
