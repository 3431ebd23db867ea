package session

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/testclock"
)

// TestBrokerFailuresLogBoundedConcurrently: failures from many goroutines
// at once still write brokerFailLogBurst WARN lines, and the next line
// counts every other failure once.
func TestBrokerFailuresLogBoundedConcurrently(t *testing.T) {
	n, logs := newWarnLoggedNode(t, func(b Broker) Broker { return downBroker{b} })
	clock := testclock.New(time.Now())
	n.now = clock.Now
	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, _ = n.Publish(context.Background(), "orders", json.RawMessage(`1`), "")
			}
		}()
	}
	wg.Wait()
	if got := len(warnLines(logs)); got != brokerFailLogBurst {
		t.Fatalf("%d failures wrote %d WARN lines, want %d", goroutines*each, got, brokerFailLogBurst)
	}
	clock.Advance(time.Second)
	_, _ = n.History(context.Background(), "orders", nil, 0) // succeeds: no line
	_, _ = n.Publish(context.Background(), "orders", json.RawMessage(`1`), "")
	lines := warnLines(logs)
	want := "suppressed=390"
	if len(lines) != brokerFailLogBurst+1 || !strings.Contains(lines[len(lines)-1], want) {
		t.Fatalf("after a second: %d WARN lines, the last %q; want %d, saying %s", len(lines), lines[len(lines)-1], brokerFailLogBurst+1, want)
	}
}
