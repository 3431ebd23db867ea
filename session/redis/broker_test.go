package redis

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// newTestBroker returns a broker on url with a prefix of its own, so that
// tests sharing one Redis do not see each other's channels.
func newTestBroker(t testing.TB, url string, cfg Config) *Broker {
	t.Helper()
	if url != "" {
		cfg.URL = url
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "test-" + session.NewEpoch()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// recordOn makes a new recorder b's handler and subscribes b to chans.
func recordOn(t testing.TB, b *Broker, chans ...string) *brokertest.Recorder {
	t.Helper()
	rec := brokertest.NewRecorder()
	b.SetHandler(rec)
	for _, ch := range chans {
		if err := b.Subscribe(context.Background(), ch); err != nil {
			t.Fatalf("subscribe %q: %v", ch, err)
		}
	}
	return rec
}

func TestConformance(t *testing.T) {
	url, _ := brokertest.StartRedis(t)
	brokertest.Run(t, func(t *testing.T) session.Broker {
		return newTestBroker(t, url, Config{})
	})
}

// testWriter sends log lines to the test's log. The broker logs only from
// its receiver, which Close (a cleanup of the test) stops.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
