package brokertest_test

import (
	"testing"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

func TestMemoryBroker(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) session.Broker {
		b := session.NewMemoryBroker(session.MemoryBrokerConfig{})
		t.Cleanup(func() { b.Close() })
		return b
	})
}
