package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
	"github.com/waterspout/waterspout/transports/poll"
	"github.com/waterspout/waterspout/transports/sockjs"
	"github.com/waterspout/waterspout/transports/sse"
	"github.com/waterspout/waterspout/transports/ws"
)

// frame is a decoded server frame.
type frame = wire.Frame

// env is one scenario's server: a node on a memory broker with every
// transport mounted at its public path.
type env struct {
	t     *testing.T
	node  *session.Node
	srv   *httptest.Server
	token string // when set, sent as `token` on every connect URL
}

const testPing = time.Second

func newEnv(t *testing.T, limits session.Limits) *env {
	t.Helper()
	return newEnvFor(t, session.Config{Limits: limits}, nil)
}

// newEnvFor is newEnv with the node's configuration (its Broker and Ping
// are set here) and the transports' Authenticate.
func newEnvFor(t *testing.T, ncfg session.Config, authenticate func(*http.Request, *session.Session) error) *env {
	t.Helper()
	ncfg.Ping = testPing
	we := wiretest.TransportEnv[struct{}]{
		Node: ncfg,
		Transport: transports.Config{
			CheckOrigin:  func(r *http.Request) bool { o := r.Header.Get("Origin"); return o == "" || o == "http://allowed.test" },
			WriteTimeout: 2 * time.Second,
			Authenticate: authenticate,
		},
	}.Start(t, func(cfg transports.Config, _ struct{}) (map[string]http.Handler, error) {
		var errs []error
		must := func(h http.Handler, err error) http.Handler { errs = append(errs, err); return h }
		hs := map[string]http.Handler{
			"/connect/ws":      must(ws.New(cfg, ws.Options{})),
			"/connect/sse":     must(sse.New(cfg)),
			"/connect/poll":    must(poll.New(cfg, poll.Options{Timeout: 2 * time.Second})),
			"/connect/sockjs/": must(sockjs.New(cfg, sockjs.Options{Prefix: "/connect/sockjs"})),
		}
		return hs, errors.Join(errs...)
	})
	return &env{t: t, node: we.Node, srv: we.Srv}
}

// publish publishes the integers from..to to ch, as JSON numbers.
func (e *env) publish(ch string, from, to int) {
	e.t.Helper()
	e.publishData(ch, from, to, "")
}

// publishData publishes {"n":i,"pad":pad} for i in from..to.
func (e *env) publishData(ch string, from, to int, pad string) {
	e.t.Helper()
	for i := from; i <= to; i++ {
		data := strconv.Itoa(i)
		if pad != "" {
			data = fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad)
		}
		if _, err := e.node.Publish(context.Background(), ch, json.RawMessage(data), ""); err != nil {
			e.t.Fatal(err)
		}
	}
}

// waitSessions waits until the node has n sessions.
func (e *env) waitSessions(n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if e.node.SessionCount() == n {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("node has %d sessions, want %d", e.node.SessionCount(), n)
}
