package transports

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/waterspout/waterspout/session"
)

// Config is what the server hands every transport.
type Config struct {
	Node *session.Node
	// CheckOrigin reports whether a browser request may connect, from its
	// Origin header. Required: there is no permissive default.
	CheckOrigin func(r *http.Request) bool
	// Authenticate reads the connection credentials of a request (the
	// `token` query parameter or an Authorization header) and records them on
	// the session. It returns a session.Disconnect (terminal: invalid token)
	// to refuse. Nil lets every request connect anonymously.
	Authenticate func(r *http.Request, s *session.Session) error
	// WriteTimeout bounds every write to a client. Default 10 s.
	WriteTimeout time.Duration
	// Logger receives connection-level events. Default slog.Default().
	Logger *slog.Logger
}

// DefaultWriteTimeout is used when Config.WriteTimeout is zero.
const DefaultWriteTimeout = 10 * time.Second

// Validate fills defaults and checks required fields.
func (c *Config) Validate() error {
	if c.Node == nil {
		return errors.New("transports: config needs a Node")
	}
	if c.CheckOrigin == nil {
		return errors.New("transports: config needs CheckOrigin")
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Authenticate runs c.Authenticate if set.
func (c *Config) AuthenticateRequest(r *http.Request, s *session.Session) error {
	if c.Authenticate == nil {
		return nil
	}
	return c.Authenticate(r, s)
}
