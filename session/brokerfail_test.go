package session

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/testclock"
	"github.com/waterspout/waterspout/internal/testlog"
)

// downBroker is a broker whose publishes all fail, as Redis's do while it
// is down.
type downBroker struct{ Broker }

func (downBroker) Publish(context.Context, string, json.RawMessage, PublishOptions) (PublishResult, error) {
	return PublishResult{}, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}

// warnLines returns the WARN lines written to logs so far.
func warnLines(logs *testlog.Buffer) []string {
	var out []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") {
			out = append(out, line)
		}
	}
	return out
}

// newWarnLoggedNode returns a node on a memory broker wrapped by wrap,
// logging at WARN and above into the returned buffer.
func newWarnLoggedNode(t *testing.T, wrap func(Broker) Broker) (*Node, *testlog.Buffer) {
	t.Helper()
	mb := NewMemoryBroker(MemoryBrokerConfig{})
	t.Cleanup(func() { mb.Close() })
	logs := &testlog.Buffer{}
	n, err := New(Config{Broker: wrap(mb), Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	return n, logs
}

// TestBrokerFailuresLogBounded: with the broker down every publish fails
// with 503, and its WARN lines are bounded (a batch to 1,000 channels wrote
// 1,000): brokerFailLogBurst, then brokerFailLogRate a second, and the
// first line after a pause says how many were not written at WARN.
func TestBrokerFailuresLogBounded(t *testing.T) {
	n, logs := newWarnLoggedNode(t, func(b Broker) Broker { return downBroker{b} })
	clock := testclock.New(time.Now())
	n.now = clock.Now
	const failures = 100
	for i := range failures {
		if _, err := n.Publish(context.Background(), "orders", json.RawMessage(`1`), ""); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("publish %d with the broker down: %v, want ErrUnavailable", i, err)
		}
	}
	if got := len(warnLines(logs)); got != brokerFailLogBurst {
		t.Fatalf("%d failed publishes wrote %d WARN lines, want %d", failures, got, brokerFailLogBurst)
	}
	clock.Advance(time.Second)
	if _, err := n.Publish(context.Background(), "orders", json.RawMessage(`1`), ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish after a second: %v", err)
	}
	lines := warnLines(logs)
	last := lines[len(lines)-1]
	if len(lines) != brokerFailLogBurst+1 || !strings.Contains(last, "suppressed=90") || !strings.Contains(last, "connection refused") {
		t.Fatalf("after a second: %d WARN lines, the last %q; want %d, saying suppressed=90 and the error", len(lines), last, brokerFailLogBurst+1)
	}
}

// goneBroker is a broker whose publishes fail because their caller went
// away, as a publish does when its HTTP client closes the request.
type goneBroker struct{ Broker }

func (goneBroker) Publish(context.Context, string, json.RawMessage, PublishOptions) (PublishResult, error) {
	return PublishResult{}, context.Canceled
}

// TestBrokerCallOfAGoneClientNotWarned: a broker call that failed because
// its caller went away says nothing about the broker: no WARN line, and
// the budget of broker-failure lines is left for real failures.
func TestBrokerCallOfAGoneClientNotWarned(t *testing.T) {
	n, logs := newWarnLoggedNode(t, func(b Broker) Broker { return goneBroker{b} })
	for range 2 * brokerFailLogBurst {
		if _, err := n.Publish(context.Background(), "orders", json.RawMessage(`1`), ""); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("publish: %v, want ErrUnavailable", err)
		}
	}
	if lines := warnLines(logs); len(lines) != 0 {
		t.Fatalf("%d WARN lines for calls whose caller went away: %q", len(lines), lines)
	}
	if ok, _ := n.brokerFailLog.take(n.now(), brokerFailLogBurst, brokerFailLogRate); !ok {
		t.Fatal("the calls spent the budget of broker-failure lines")
	}
}
