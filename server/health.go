package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// readyTimeout bounds the broker check behind /readyz.
const readyTimeout = 2 * time.Second

// handleLivez answers 200 while the process serves HTTP at all.
func (s *Server) handleLivez(c echo.Context) error {
	return c.String(http.StatusOK, "ok\n")
}

// handleReadyz answers 200 when the node can take clients and 503 with the
// reason otherwise, from the first moment of a shutdown, so that a load
// balancer stops sending new clients before they are told to leave.
func (s *Server) handleReadyz(c echo.Context) error {
	if err := s.readiness(c.Request().Context()); err != nil {
		return c.String(http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
	}
	return c.String(http.StatusOK, "ok\n")
}

// readiness returns why the node cannot take clients, or nil: what /readyz
// answers, and the admin view shows.
func (s *Server) readiness(ctx context.Context) error {
	if s.stopping.Load() {
		return errShuttingDown
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	return s.node.Ready(ctx)
}

var errShuttingDown = errors.New("shutting down")
