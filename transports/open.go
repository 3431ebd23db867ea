package transports

import (
	"context"
	"errors"
	"net/http"

	"github.com/waterspout/waterspout/session"
)

// Opening is what a transport asks of Open: the prologue every transport
// runs before it writes a byte of the session (create the session,
// authenticate the request, subscribe what the request names) and how a
// refusal is told.
type Opening struct {
	// Transport names the session (hello frame, metrics).
	Transport string
	// Auth is the request shown to Config.Authenticate: the HTTP request
	// itself, or a copy carrying a token that came in a body (WithToken).
	// Nil skips authentication (a SockJS session without a token).
	Auth *http.Request
	// Prepare, if set, runs on the new session before it is authenticated
	// (keep it out of presence, bind it to a SockJS link).
	Prepare func(*session.Session)
	// Stream, if set, names the channels to subscribe and where to resume
	// them, in order; Quiet subscribes them quietly (a long-poll resume).
	Stream *StreamRequest
	Quiet  bool
	// Framed is set by the transports that tell a refusal as a disconnect
	// frame and close code after the upgrade (WebSocket, SockJS), rather
	// than as an HTTP status: the session then records the refusal's
	// Disconnect as it is, where the HTTP transports record the one that
	// matches their status (RefusalDisconnect).
	Framed bool
	// KeepRefused leaves a session refused after it was created failed but
	// not closed: the caller closes it once its writer has told the client
	// (SockJS, whose session already has a receiving request).
	KeepRefused bool
}

// Refusal is why Open refused a request: the HTTP answer (Status) for the
// HTTP transports, the disconnect frame and close code (Disconnect) for
// WebSocket and SockJS.
type Refusal struct {
	Status     *session.Error
	Disconnect session.Disconnect
}

// Error returns the status's reason.
func (r *Refusal) Error() string { return r.Status.Error() }

// errShuttingDown answers a request that comes while the node shuts down.
var errShuttingDown = &session.Error{Code: http.StatusServiceUnavailable, Reason: "shutting down"}

// Open is the one entry point of every transport: it creates a session for
// the request, authenticates it (a panic in the authenticator is recovered,
// see AuthenticateRequest) and subscribes Opening.Stream. On refusal it
// closes the session (unless KeepRefused) and returns why; the caller
// answers the refusal and must not use a closed session. A session that
// fails while subscribing (shutdown, queue overflow) is returned as it is:
// its writer tells the client.
//
// ctx bounds the subscriptions (the request's context).
func (c *Config) Open(ctx context.Context, o Opening) (*session.Session, *Refusal) {
	s, err := c.Node.NewSession(o.Transport)
	if err != nil {
		return nil, c.refusal(err, o, "new session")
	}
	if o.Prepare != nil {
		o.Prepare(s)
	}
	if o.Auth != nil {
		if err := c.AuthenticateRequest(o.Auth, s); err != nil {
			return c.refuse(s, c.refusal(err, o, "authenticate"), o)
		}
	}
	if o.Stream == nil {
		return s, nil
	}
	for _, ch := range o.Stream.Channels {
		sr := session.SubscribeRequest{Channel: ch, Quiet: o.Quiet}
		if p, ok := o.Stream.Positions[ch]; ok {
			sr.Since = &p
		}
		err := s.Subscribe(ctx, sr)
		if errors.Is(err, session.ErrClosed) {
			break // the session failed (shutdown, queue overflow): its writer says so
		}
		if err != nil {
			e := session.AsError(err)
			return c.refuse(s, &Refusal{Status: e, Disconnect: RefusalDisconnect(e)}, o)
		}
	}
	return s, nil
}

// refuse ends s, refused with ref, and returns s only when the caller keeps it.
func (c *Config) refuse(s *session.Session, ref *Refusal, o Opening) (*session.Session, *Refusal) {
	if o.KeepRefused {
		s.Fail(ref.Disconnect)
		return s, ref
	}
	s.Close(ref.Disconnect)
	return nil, ref
}

// refusal maps why opening failed (what of it) to what the client is told.
// Over HTTP: AuthError's status, 503 for a node shutting down. As a
// disconnect: a session.Disconnect as it is; anything else is a server-side
// failure (a key service that is down, a panic), logged, which the client
// may retry (DisconnectInternal).
func (c *Config) refusal(err error, o Opening, what string) *Refusal {
	status := AuthError(err)
	if what == "new session" {
		status = errShuttingDown
	}
	if !o.Framed {
		return &Refusal{Status: status, Disconnect: RefusalDisconnect(status)}
	}
	var d session.Disconnect
	if !errors.As(err, &d) {
		c.Logger.Warn(o.Transport+" "+what+" failed", "transport", o.Transport, "err", err)
		d = session.DisconnectInternal
	}
	return &Refusal{Status: status, Disconnect: d}
}
