package server

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
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

// secretParams are query parameters whose values never reach a log line.
var secretParams = []string{"token", "access_token", "api_key", "apikey"}

// redactedQuery returns a raw query with the values of secret parameters
// replaced. It works on the raw text so that nothing else is re-encoded.
func redactedQuery(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		for _, s := range secretParams {
			if strings.EqualFold(name, s) {
				parts[i] = s + "=REDACTED"
				break
			}
		}
	}
	return strings.Join(parts, "&")
}

// redactedURL is the path and redacted query of u, for logs.
func redactedURL(u *url.URL) string {
	if u.RawQuery == "" {
		return u.Path
	}
	return u.Path + "?" + redactedQuery(u.RawQuery)
}

// requestLog logs one line per request at level (after the answer is
// written). It never logs headers: Authorization carries API keys.
func requestLog(log *slog.Logger, level slog.Level) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // write the answer now, so its status is logged
			}
			if !log.Enabled(c.Request().Context(), level) {
				return nil
			}
			r := c.Request()
			log.LogAttrs(r.Context(), level, "request",
				slog.String("method", r.Method),
				slog.String("url", redactedURL(r.URL)),
				slog.Int("status", c.Response().Status),
				slog.Int64("bytes", c.Response().Size),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", c.RealIP()),
			)
			return nil
		}
	}
}
