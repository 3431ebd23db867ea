package wiretest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Server is what Serve runs: a *server.Server, named by its methods because
// package server's own tests use this package.
type Server interface {
	Handler() http.Handler
	Shutdown(ctx context.Context) error
}

// Serve serves s's handler on a loopback test server until the test ends;
// then it closes the test server and shuts s down within WaitLimit, failing
// the test if the shutdown fails.
func Serve(tb testing.TB, s Server) *httptest.Server {
	tb.Helper()
	ts := httptest.NewServer(s.Handler())
	tb.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
	})
	return ts
}
