package auth

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/waterspout/waterspout/session"
)

// AuthorizerOptions configures an Authorizer.
type AuthorizerOptions struct {
	// Logger receives refused tokens at Debug level, with the session id and
	// the reason, never the token. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock of the limit on failed command tokens (nil:
	// time.Now).
	Now func() time.Time
}

// maxFailingSessions bounds the sessions whose failed command tokens are
// counted at once (about 100 bytes each); past it the least recent is
// forgotten and starts again with a full allowance.
const maxFailingSessions = 100_000

// Authorizer decides what sessions may do from their connection tokens. It
// implements session.TokenAuthorizer (set it as session.Config.Authorizer)
// and its Authenticate method is the transports.Config.Authenticate hook.
//
// Subscribing to ch is allowed when any of these holds, in this order:
//   - the subscribe command's own token grants ch (its `channels` match, or
//     ch is its subject's personal channel);
//   - the session's connection token grants ch the same way;
//   - ch's namespace is Anonymous and ch is not a personal channel.
//
// Otherwise the answer is 401 when the session showed no token at all and
// 403 when it did. Publishing from a client needs the namespace's
// ClientPublish, and then either a `publish` pattern of the connection token
// that matches or, for a non-personal channel, an Anonymous namespace.
type Authorizer struct {
	v   *Verifier // nil: tokens are refused, namespaces and personal channels still apply
	log *slog.Logger
	// failures limits, per session id, the command tokens that fail
	// verification (see commandFailBurst).
	failures *KeyedLimiter

	// mu guards grants and the sweep queue. Lock order: mu, then a
	// session's own lock (SetUser, User and Done take it); the session
	// never calls into the Authorizer while holding its lock.
	mu     sync.Mutex
	grants map[*session.Session]*grant
	// queue lists sessions that got a grant, oldest first; every new grant
	// looks at the two oldest and drops those whose session has ended (see
	// sweepLocked). It may hold sessions whose grant is gone already.
	queue []*session.Session
	head  int
}

// grant is a session's verified connection token. It is replaced, never
// changed, so its claims can be read without the lock.
type grant struct {
	claims   *Claims
	deadline time.Time   // when the token stops verifying
	timer    *time.Timer // fails the session at deadline
}

var _ session.TokenAuthorizer = (*Authorizer)(nil)

// NewAuthorizer returns an Authorizer that verifies tokens with v. A nil v
// means the server uses no tokens: a request that carries one is refused
// (invalid token), and every session is anonymous.
func NewAuthorizer(v *Verifier, opts AuthorizerOptions) *Authorizer {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Authorizer{v: v, log: opts.Logger, grants: make(map[*session.Session]*grant),
		failures: NewKeyedLimiter(1/commandFailEvery.Seconds(), commandFailBurst, maxFailingSessions, opts.Now)}
}

// Authenticate is the transports.Config.Authenticate hook. A request without
// a token connects anonymously. A bad token refuses the connection with the
// *TokenError's Disconnect (3007 expired, 3502 invalid). A good one makes the
// session act for its subject (s.User) until the token expires, when the
// session fails with session.DisconnectTokenExpired unless an `auth` command
// brought a fresh token first. SSE and long-poll clients bring the fresh
// token with their next request.
func (a *Authorizer) Authenticate(r *http.Request, s *session.Session) error {
	if len(r.URL.Query()["token"]) > 1 || len(r.Header.Values("Authorization")) > 1 {
		// Which one would be meant? A proxy or gateway in front may read
		// the last where TokenFromRequest reads the first.
		err := invalid("token given more than once")
		a.refused(s, "connect", err)
		return err
	}
	tok := TokenFromRequest(r)
	if tok == "" {
		return nil
	}
	if a.v == nil {
		return invalid("this server does not use tokens")
	}
	c, err := a.v.VerifyConnection(tok)
	if err != nil {
		a.refused(s, "connect", err)
		return err
	}
	a.mu.Lock()
	a.installLocked(s, c)
	a.mu.Unlock()
	return nil
}

// Refresh implements the `auth` command: it verifies a fresh token for the
// session's subject and moves the session's expiry to the new token's. The
// new token's grants replace the old ones for later commands; existing
// subscriptions stay. An anonymous session may authenticate this way (the
// way to keep tokens out of URLs on WebSocket and SockJS); after that, and
// after a connect with a token, only tokens for the same subject are taken.
func (a *Authorizer) Refresh(s *session.Session, token string) error {
	if a.v != nil && token == "" {
		return ErrTokenRequired
	}
	c, err := a.commandToken(s, "auth", token)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if sub := a.subjectLocked(s); sub != "" && sub != c.Subject {
		return ErrOtherSubject
	}
	if s.Done() {
		return session.ErrClosed
	}
	a.installLocked(s, c)
	return nil
}

// commandToken verifies the connection token that command (auth or
// subscribe) carries. A refusal is logged and becomes the command's error;
// without token keys every token is refused with ErrNoTokens.
func (a *Authorizer) commandToken(s *session.Session, command, token string) (*Claims, error) {
	if a.v == nil {
		return nil, ErrNoTokens
	}
	if !a.failures.Allow(s.ID()) {
		return nil, ErrTokenFailures
	}
	c, err := a.v.VerifyConnection(token)
	if err != nil {
		a.refused(s, command, err)
		return nil, commandError(err)
	}
	a.failures.Refund(s.ID(), 1)
	return c, nil
}

// A token's signature costs 10–90 µs to check (BenchmarkVerify: HS256 to
// ES256), and a session's `auth` and `subscribe` commands may carry any
// made-up token as often as the command rate allows: 100 a second on each
// of an address's connections would be cores' worth of checks. So each
// session may send commandFailBurst tokens that fail verification, then
// one every commandFailEvery; past that a command's token is refused
// unchecked (ErrTokenFailures, 429). A check spends one before it starts
// and a token that verifies gives it back, so a client refreshing good
// tokens is never limited. Connect tokens are bounded by the connect rate.
const (
	commandFailBurst = 5
	commandFailEvery = 10 * time.Second
)

// AuthorizeSubscribe implements session.Authorizer.
func (a *Authorizer) AuthorizeSubscribe(s *session.Session, ns session.Namespace, ch, token string) error {
	if token != "" {
		c, err := a.commandToken(s, "subscribe", token)
		if err != nil {
			return err
		}
		a.mu.Lock()
		sub := a.subjectLocked(s)
		a.mu.Unlock()
		if sub != "" && sub != c.Subject {
			return ErrOtherSubject
		}
		if c.CanSubscribe(ch) {
			return nil
		}
	}
	return a.byGrant(s, ns, ch, (*Claims).CanSubscribe, token != "")
}

// AuthorizePublish implements session.Authorizer. The namespace's
// ClientPublish is the master switch: without it no token lets a client
// publish (backends publish through the API).
func (a *Authorizer) AuthorizePublish(s *session.Session, ns session.Namespace, ch string) error {
	if !ns.ClientPublish {
		return ErrNoClientPublish
	}
	return a.byGrant(s, ns, ch, (*Claims).CanPublish, false)
}

// byGrant decides on ch by the session's grant, where can allows it, else by
// the namespace's anonymous access. Without a grant, and without a token in
// the command (withToken), the refusal is ErrTokenRequired: a client that
// sent no token learns that one would help.
func (a *Authorizer) byGrant(s *session.Session, ns session.Namespace, ch string, can func(*Claims, string) bool, withToken bool) error {
	g := a.grantOf(s)
	if g != nil {
		if a.expired(g) {
			return ErrTokenExpired
		}
		if can(g.claims, ch) {
			return nil
		}
	}
	if ns.Anonymous && !IsPersonal(ch) {
		return nil
	}
	if g == nil && !withToken {
		return ErrTokenRequired
	}
	return ErrNotGranted
}

// Claims returns the session's current connection claims, or nil.
func (a *Authorizer) Claims(s *session.Session) *Claims {
	if g := a.grantOf(s); g != nil {
		return g.claims
	}
	return nil
}

// Forget drops what the Authorizer holds for s and stops its expiry timer.
// Call it when the session closes; without it the state of a closed session
// lingers until a later connection sweeps it or its token expires (see the
// package documentation). It is idempotent.
func (a *Authorizer) Forget(s *session.Session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if g := a.grants[s]; g != nil {
		g.timer.Stop()
		delete(a.grants, s)
	}
}

// installLocked records c as s's grant, replacing (and stopping) any
// previous one, and arms the expiry timer.
func (a *Authorizer) installLocked(s *session.Session, c *Claims) {
	g := &grant{claims: c, deadline: a.v.deadline(c)}
	// The callback takes mu, so it runs after this function even when the
	// deadline is already here.
	g.timer = time.AfterFunc(g.deadline.Sub(a.v.now()), func() { a.expire(s, g) })
	old := a.grants[s]
	a.grants[s] = g // before the sweep, which drops queued sessions without a grant
	if old != nil {
		old.timer.Stop()
	} else {
		a.queue = append(a.queue, s)
		a.sweepLocked(2)
	}
	s.SetUser(c.Subject)
}

// sweepLocked looks at up to n sessions at the head of the queue: a session
// that has ended loses its grant, one whose grant is gone already is
// dropped, a live one goes to the back. With two looked at per new grant,
// every entry is looked at before the queue has grown by half, so the state
// held stays within about twice the live sessions without any goroutine or
// close hook.
func (a *Authorizer) sweepLocked(n int) {
	for ; n > 0 && a.head < len(a.queue); n-- {
		s := a.queue[a.head]
		a.queue[a.head] = nil
		a.head++
		g := a.grants[s]
		switch {
		case g == nil:
		case s.Done():
			g.timer.Stop()
			delete(a.grants, s)
		default:
			a.queue = append(a.queue, s)
		}
	}
	if a.head > 64 && a.head > len(a.queue)/2 {
		n := copy(a.queue, a.queue[a.head:])
		clear(a.queue[n:])
		a.queue, a.head = a.queue[:n], 0
	}
}

// expire ends a session whose token ran out, unless a fresh grant replaced
// it meanwhile.
func (a *Authorizer) expire(s *session.Session, g *grant) {
	a.mu.Lock()
	if a.grants[s] != g {
		a.mu.Unlock()
		return
	}
	delete(a.grants, s)
	a.mu.Unlock()
	if !s.Done() {
		a.log.Debug("connection token expired", "session", s.ID(), "transport", s.Transport())
		s.Fail(session.DisconnectTokenExpired)
	}
}

func (a *Authorizer) grantOf(s *session.Session) *grant {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.grants[s]
}

// subjectLocked is who the session acts for: its grant's subject, or the
// user recorded on it (which outlives an expired grant).
func (a *Authorizer) subjectLocked(s *session.Session) string {
	if g := a.grants[s]; g != nil {
		return g.claims.Subject
	}
	return s.User()
}

// expired covers the moment between a token's deadline and its timer.
func (a *Authorizer) expired(g *grant) bool { return !a.v.now().Before(g.deadline) }

func (a *Authorizer) refused(s *session.Session, what string, err error) {
	a.log.Debug("token refused", "session", s.ID(), "transport", s.Transport(), "command", what, "err", err)
}
