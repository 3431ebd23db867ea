package session

import (
	"errors"
	"fmt"
)

// Error is a command failure reported to the client as an `error` frame (or,
// on the HTTP API, as a status with the same code). Codes follow HTTP.
type Error struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Reason) }

// Sentinel command errors. Wrap them with context; errors.As recovers the code.
var (
	ErrBadRequest        = &Error{400, "bad request"}
	ErrUnauthorized      = &Error{401, "unauthorized"}
	ErrPermissionDenied  = &Error{403, "permission denied"}
	ErrNotFound          = &Error{404, "not found"}
	ErrAlreadySubscribed = &Error{409, "already subscribed"}
	ErrTooLarge          = &Error{413, "too large"}
	ErrTooMany           = &Error{429, "too many requests"}
	ErrInternal          = &Error{500, "internal error"}
	ErrUnavailable       = &Error{503, "unavailable"}
	// ErrChannelLimit refuses a subscribe or publish that would start a new
	// channel while the broker holds its maximum of channels; channels that
	// exist go on working. See MemoryBrokerConfig.MaxChannels.
	ErrChannelLimit = &Error{503, "server channel limit reached: no new channel can start until others end"}
)

// ErrClosed is returned by operations on a session that has ended.
var ErrClosed = errors.New("session: closed")

// badRequest returns a 400 error with a specific reason.
func badRequest(format string, args ...any) *Error {
	return &Error{400, fmt.Sprintf(format, args...)}
}

// AsError maps any error to the Error sent to the client. Errors that are not
// an *Error are internal and their text is not exposed.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var d Disconnect
	if errors.As(err, &d) {
		return &Error{503, d.Reason}
	}
	return ErrInternal
}
