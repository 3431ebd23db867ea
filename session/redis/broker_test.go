package redis

import (
	"testing"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// newTestBroker returns a broker on url with a prefix of its own, so that
// tests sharing one Redis do not see each other's channels.
func newTestBroker(t testing.TB, url string, cfg Config) *Broker {
	t.Helper()
	cfg.URL = url
	if cfg.Prefix == "" {
		cfg.Prefix = "test-" + newEpoch()
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	url, _ := brokertest.StartRedis(t)
	brokertest.Run(t, func(t *testing.T) session.Broker {
		return newTestBroker(t, url, Config{})
	})
}
