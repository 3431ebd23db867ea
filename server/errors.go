package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// apiError returns a *session.Error, which the error handler answers with.
func apiError(code int, format string, args ...any) error {
	return &session.Error{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// asAPIError maps any error a handler returned to the answer's code and
// reason. Errors that carry no code are internal: their text stays in the log.
func asAPIError(err error) (e *session.Error, internal bool) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		reason := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && m != "" {
			reason = m
		}
		return &session.Error{Code: he.Code, Reason: reason}, false
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &session.Error{Code: http.StatusRequestEntityTooLarge, Reason: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}, false
	}
	var se *session.Error
	if errors.As(err, &se) {
		return se, false
	}
	var d session.Disconnect
	if errors.As(err, &d) {
		return &session.Error{Code: http.StatusServiceUnavailable, Reason: d.Reason}, false
	}
	return session.ErrInternal, true
}

// errorHandler is echo's HTTPErrorHandler: every error becomes the JSON error body.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		e, internal := asAPIError(err)
		if internal {
			log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
		}
		if c.Response().Committed {
			return
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(e.Code)
			return
		}
		// The body every WaterSpout endpoint answers an error with.
		_ = c.Blob(e.Code, echo.MIMEApplicationJSON, append(transports.ErrorBody(e), '\n'))
	}
}
