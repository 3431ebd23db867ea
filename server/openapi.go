package server

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDoc is the OpenAPI 3.1 document of /api/*, kept beside the
// handlers it describes; openapi_test.go checks the answers of every route
// and error against it, so the two cannot drift.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document of the backend API (a copy).
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

// handleOpenAPI serves GET /api/openapi.json. It needs no credential: the
// document is the same for everyone, and clients are generated from it
// before anyone has a key.
func (s *Server) handleOpenAPI(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-cache")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDoc)
}
