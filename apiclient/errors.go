package apiclient

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinels that errors.Is matches against an *Error, by HTTP status.
var (
	// ErrUnauthorized: 401, a missing or wrong API key or publisher token.
	ErrUnauthorized = errors.New("apiclient: unauthorized")
	// ErrForbidden: 403, the credential may not use this channel, or an
	// Origin header that is not allowed.
	ErrForbidden = errors.New("apiclient: forbidden")
	// ErrInvalid: 400, 413 or 415, the request itself is wrong (a bad
	// channel name, data too large, ...); sending it again cannot help.
	ErrInvalid = errors.New("apiclient: invalid request")
	// ErrRateLimited: 429, the credential's publish rate is spent; see
	// Error.RetryAfter.
	ErrRateLimited = errors.New("apiclient: rate limited")
	// ErrUnavailable: 5xx, still failing after the retries.
	ErrUnavailable = errors.New("apiclient: server unavailable")
)

// Error is an error answer of the API: the HTTP status and the server's
// {"error":{"code","reason"}}.
type Error struct {
	// Method and Path name the call, such as POST /api/publish.
	Method, Path string
	// Status is the HTTP status; Code the error body's code (the same
	// number when the answer came from WaterSpout itself).
	Status, Code int
	// Reason is the server's explanation.
	Reason string
	// RetryAfter is the server's Retry-After, when it sent one (429, 503).
	RetryAfter time.Duration
	// Attempts is how many requests were made, retries included.
	Attempts int
}

// ErrorOf decodes a refused answer as the client does: its status, the
// body's {"error":{"code","reason"}} (else the status text) and its
// Retry-After. body is what the caller read of resp.Body. It serves
// callers making their own requests, such as waterspout listen's streams.
func ErrorOf(resp *http.Response, body []byte) *Error { return errorOf(resp, body) }

func (e *Error) Error() string {
	s := fmt.Sprintf("waterspout %s %s: %d %s", e.Method, e.Path, e.Status, e.Reason)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	return s
}

// Is matches the sentinel of e's status class.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrInvalid:
		return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge ||
			e.Status == http.StatusUnsupportedMediaType
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.Status >= 500
	}
	return false
}
