package auth

import (
	"errors"
	"net/http"

	"github.com/waterspout/waterspout/session"
)

// TokenError is why a token was refused. It unwraps to the session.Disconnect
// a connection refused for it ends with: session.DisconnectTokenExpired when
// the token was genuine but has expired (a fresh one will do),
// session.DisconnectInvalidToken for everything else. Its text never holds
// the token or any part of it, so it is safe to log.
type TokenError struct {
	Disconnect session.Disconnect
	Reason     string // a fixed description such as "signature invalid"
}

func (e *TokenError) Error() string { return "auth: token refused: " + e.Reason }

// Unwrap lets errors.As and errors.Is find the Disconnect.
func (e *TokenError) Unwrap() error { return e.Disconnect }

// Expired reports whether the token was refused only for having expired.
func (e *TokenError) Expired() bool { return e.Disconnect == session.DisconnectTokenExpired }

func invalid(reason string) *TokenError {
	return &TokenError{Disconnect: session.DisconnectInvalidToken, Reason: reason}
}

// Command errors: what a subscribe, publish or auth command is answered with.
// A bad token in a command fails the command, not the session.
var (
	ErrTokenRequired   = &session.Error{Code: http.StatusUnauthorized, Reason: "token required"}
	ErrTokenExpired    = &session.Error{Code: http.StatusUnauthorized, Reason: "token expired"}
	ErrInvalidToken    = &session.Error{Code: http.StatusUnauthorized, Reason: "invalid token"}
	ErrNotGranted      = &session.Error{Code: http.StatusForbidden, Reason: "permission denied"}
	ErrOtherSubject    = &session.Error{Code: http.StatusForbidden, Reason: "token is for another user"}
	ErrNoClientPublish = &session.Error{Code: http.StatusForbidden, Reason: "clients may not publish in this namespace"}
	ErrNoTokens        = &session.Error{Code: http.StatusBadRequest, Reason: "this server does not use tokens"}
	// ErrTokenFailures refuses a command's token unchecked: its session has
	// sent too many that failed verification (see commandFailBurst).
	ErrTokenFailures = &session.Error{Code: http.StatusTooManyRequests, Reason: "rate limited: too many tokens that failed verification on this connection"}
)

// commandError maps a Verify error to the command error answered for it.
func commandError(err error) *session.Error {
	var te *TokenError
	if errors.As(err, &te) && te.Expired() {
		return ErrTokenExpired
	}
	return ErrInvalidToken
}
