package server

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
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
//
// Refusals are what a hostile client makes as fast as it likes (a flood of
// made-up API keys is a WARN line each), so their lines are bounded by rl:
// past it a refusal is logged at debug instead, and the next refusal that
// is logged at refused says how many were (suppressed=N).
func requestLog(log *slog.Logger, level, refused slog.Level, rl *refusalLog) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // write the answer now, so its status is logged
			}
			level, msg := level, "request"
			var suppressed int64
			if c.Response().Status >= http.StatusBadRequest {
				msg = "request refused"
				if rl.allow(c.RealIP(), &suppressed) {
					level = refused
				}
			}
			if !log.Enabled(c.Request().Context(), level) {
				return nil
			}
			r := c.Request()
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("url", auth.RedactURL(r.URL)),
				slog.Int("status", c.Response().Status),
				slog.Int64("bytes", c.Response().Size),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", c.RealIP()),
			}
			if suppressed > 0 {
				attrs = append(attrs, slog.Int64("suppressed", suppressed))
			}
			log.LogAttrs(r.Context(), level, msg, attrs...)
			return nil
		}
	}
}

// The refusal lines requestLog writes at their level: refusalLogBurst from
// one client address, then refusalLogRate a second; refusalLogAllBurst
// from all addresses together, then refusalLogAllRate a second (a flood
// from many addresses). Enough to see who is refused and why, not enough
// to fill a disk.
const (
	refusalLogBurst    = 20
	refusalLogRate     = 1
	refusalLogAllBurst = 200
	refusalLogAllRate  = 20
)

// refusalLog bounds the refusal lines of requestLog. A nil *refusalLog
// bounds nothing.
type refusalLog struct {
	perAddr, all *auth.KeyedLimiter
	suppressed   atomic.Int64 // refusals logged at debug since the last logged at their level
}

func newRefusalLog(now func() time.Time) *refusalLog {
	return &refusalLog{
		perAddr: auth.NewKeyedLimiter(refusalLogRate, refusalLogBurst, maxLimiterKeys, now),
		all:     auth.NewKeyedLimiter(refusalLogAllRate, refusalLogAllBurst, 1, now),
	}
}

// allow reports whether a refusal from addr may be logged at its level now.
// When it may, *suppressed is set to the refusals that could not since the
// last that could.
func (l *refusalLog) allow(addr string, suppressed *int64) bool {
	if l == nil {
		return true
	}
	if !l.perAddr.Allow(addr) || !l.all.Allow("") {
		l.suppressed.Add(1)
		return false
	}
	*suppressed = l.suppressed.Swap(0)
	return true
}
