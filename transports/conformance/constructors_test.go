package conformance

import (
	"net/http"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
	"github.com/waterspout/waterspout/transports/poll"
	"github.com/waterspout/waterspout/transports/sockjs"
	"github.com/waterspout/waterspout/transports/sse"
	"github.com/waterspout/waterspout/transports/ws"
)

// TestConstructors: every transport's constructor takes a Config with a
// Node and a CheckOrigin and zero Options; it refuses a Config without
// either, and the options it cannot honour.
func TestConstructors(t *testing.T) {
	node := wiretest.NewNode(t, session.Config{})
	valid := transports.Config{Node: node, CheckOrigin: func(*http.Request) bool { return true }}
	type build func(transports.Config) error
	constructors := []struct {
		name  string
		build build
	}{
		{"ws", func(c transports.Config) error { _, err := ws.New(c, ws.Options{}); return err }},
		{"sse", func(c transports.Config) error { _, err := sse.New(c); return err }},
		{"sse publish", func(c transports.Config) error { _, err := sse.NewPublishHandler(c); return err }},
		{"poll", func(c transports.Config) error { _, err := poll.New(c, poll.Options{}); return err }},
		{"sockjs", func(c transports.Config) error { _, err := sockjs.New(c, sockjs.Options{}); return err }},
	}
	for _, tc := range constructors {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.build(valid); err != nil {
				t.Errorf("valid config refused: %v", err)
			}
			noNode, noCheck := valid, valid
			noNode.Node, noCheck.CheckOrigin = nil, nil
			if tc.build(noNode) == nil {
				t.Error("config without a Node accepted")
			}
			if tc.build(noCheck) == nil {
				t.Error("config without CheckOrigin accepted")
			}
		})
	}
	for _, tc := range []struct {
		name  string
		build build
	}{
		{"ws negative close grace", func(c transports.Config) error { _, err := ws.New(c, ws.Options{CloseGrace: -1}); return err }},
		{"poll negative timeout", func(c transports.Config) error {
			_, err := poll.New(c, poll.Options{Timeout: -time.Second})
			return err
		}},
		{"sockjs relative prefix", func(c transports.Config) error {
			_, err := sockjs.New(c, sockjs.Options{Prefix: "connect/sockjs"})
			return err
		}},
		{"sockjs negative disconnect delay", func(c transports.Config) error {
			_, err := sockjs.New(c, sockjs.Options{DisconnectDelay: -time.Second})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.build(valid) == nil {
				t.Fatal("accepted")
			}
		})
	}
}
