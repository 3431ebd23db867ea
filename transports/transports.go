package transports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
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
	// Reuse, if set, hands hijacked HTTP/1.1 connections back to the HTTP
	// server for the client's next request (see ReuseListener). A held
	// long-poll uses it after its answer; without it, or while it is not
	// accepting, the answer says Connection: close and the connection closes.
	Reuse Reuser
	// Writers are the streaming connections' shared writers and heartbeat
	// grid. The server makes one for all its transports; Validate makes
	// one when nil, for a transport built alone.
	Writers *Writers
	// Context is server-wide: when it ends, every connection a transport
	// holds (a WebSocket, an SSE stream, a SockJS session) is ended as in
	// a node shutdown (disconnect 3001, reconnect), and its commands'
	// broker calls are cancelled. http.Server.Shutdown does not see
	// hijacked connections, so a server that stops without Node.Shutdown
	// cancels this. Default: never ends.
	Context context.Context
}

// Reuser takes back hijacked connections; ReuseListener is one.
type Reuser interface {
	// Accepting reports whether a connection handed back now would be
	// served (the server is listening and not shutting down).
	Accepting() bool
	// Reuse hands c back; buffered, the bytes already read from it, are
	// read first. If the server no longer accepts, c is closed.
	Reuse(c net.Conn, buffered []byte)
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
	if c.Writers == nil {
		c.Writers = NewWriters(c.Logger)
	}
	if c.Context == nil {
		c.Context = context.Background()
	}
	return nil
}

// AuthenticateRequest runs c.Authenticate if set. Every transport calls it
// between creating a session and handing it to its writer, so a panic in the
// authenticator is recovered here, once for all of them: it becomes
// session.ErrInternal (500, or disconnect 3006 on WebSocket and SockJS) and
// the caller closes the session as for any refusal. Unrecovered, it would
// unwind past the caller's cleanup (net/http recovers the handler, not the
// session) and leave the session open until shutdown.
func (c *Config) AuthenticateRequest(r *http.Request, s *session.Session) (err error) {
	if c.Authenticate == nil {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { // net/http's way to abort quietly: not ours to keep
				panic(v)
			}
			log := c.Logger
			if log == nil {
				log = slog.Default()
			}
			log.Error("panic in authenticate", "session", s.ID(), "transport", s.Transport(),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = session.ErrInternal
		}
	}()
	return c.Authenticate(r, s)
}
