package server

import (
	"context"
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
	if s.stopping.Load() {
		return c.String(http.StatusServiceUnavailable, "not ready: shutting down\n")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
	defer cancel()
	if err := s.node.Ready(ctx); err != nil {
		return c.String(http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
	}
	return c.String(http.StatusOK, "ok\n")
}
