package server

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/server/auth"
)

// NewLogger returns the logger the server and its transports share: level
// is debug, info, warn or error; format is text or json.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q (want text or json)", format)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

// requestLog logs one line per request (after the answer is written): at
// level when it succeeded, at refused when its status is 400 or more. A
// busy backend publishes thousands of times a second, so the server logs
// successful requests at debug and keeps info for its start and stop, and
// refusals where an operator sees them. It never logs headers
// (Authorization carries API keys and tokens), and secret query values
// (token=…) are logged as REDACTED.
func requestLog(log *slog.Logger, level, refused slog.Level) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // write the answer now, so its status is logged
			}
			level, msg := level, "request"
			if c.Response().Status >= http.StatusBadRequest {
				level, msg = refused, "request refused"
			}
			if !log.Enabled(c.Request().Context(), level) {
				return nil
			}
			r := c.Request()
			log.LogAttrs(r.Context(), level, msg,
				slog.String("method", r.Method),
				slog.String("url", auth.RedactURL(r.URL)),
				slog.Int("status", c.Response().Status),
				slog.Int64("bytes", c.Response().Size),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", c.RealIP()),
			)
			return nil
		}
	}
}
