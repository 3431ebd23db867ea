// Package auth decides who may connect, subscribe and publish: it verifies
// signed connection tokens (JWT), turns their claims into channel grants,
// refreshes and expires them on live sessions, checks backend API keys and
// publisher tokens, and limits connection and publish rates. It knows
// session and net/http, not echo and not any transport.
//
// # Tokens
//
// A connection token is a JWT signed with HS256, RS256 or ES256:
//
//	{"sub": "17", "exp": 1767225600, "channels": ["orders:*", "news"], "publish": ["chat:17"]}
//
// `sub` and `exp` are required; `nbf` and `iat` are honoured; `iss` and
// `aud` are checked when configured. `channels` and `publish` are patterns:
// an exact channel, or a prefix and one trailing `*` (see ValidatePattern).
// `user#<sub>` is always subscribable by the holder and by nobody else, even
// in an anonymous namespace. A token with `"kind": "publisher"` is for
// backends on /api/* and never opens a browser connection; a connection
// token never publishes through /api/* (PublisherAllowed).
//
// The accepted algorithms are those of the configured keys, and each key
// serves only its own algorithm: an HS256 token is never checked against an
// RSA or ECDSA public key's bytes, and PEM text is refused as an HMAC
// secret. `none` is never accepted. Keys named in a token's header (`jku`,
// `jwk`, `x5u`) are ignored; `crit` is refused.
//
// # Wiring (for server/)
//
//	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Issuer: iss})
//	a := auth.NewAuthorizer(v, auth.AuthorizerOptions{Logger: log})
//	node, err := session.New(session.Config{..., Authorizer: a})
//	tcfg := transports.Config{..., Authenticate: a.Authenticate}
//
// Install the Authorizer even when no keys are configured
// (auth.NewAuthorizer(nil, …)): it is what keeps `user#<sub>` channels
// private in anonymous namespaces, and it refuses tokens clearly instead of
// ignoring them.
//
// Session state: a session that connected with a token (or sent `auth`)
// has a grant in the Authorizer and an expiry timer. Three things remove
// it: the timer, which fails the session with DisconnectTokenExpired (3007)
// unless Refresh moved it; Forget, which the server should call when a
// session closes; and a sweep that every new grant runs over the two oldest
// grants, dropping those whose session is Done. The sweep bounds the state to
// about twice the live authenticated sessions without a goroutine or a close
// hook, so Forget is an optimisation (long-poll opens a session per request:
// with Forget its state goes at once). The node calls it when a session
// closes (session.Forgetter).
//
// Tokens in URLs: log request URLs through RedactURL. WebSocket and SockJS
// clients can connect without a token and send `{"type":"auth","token":…}`
// first, which keeps the token out of URLs altogether.
//
// Limits: key limiters by IPKey(addr), taken from echo's IPExtractor (never
// from X-Forwarded-For without a trusted proxy). The server refuses a
// connect over the KeyedLimiter with HTTP 429 before any upgrade or session
// (the cheapest answer to a flood), and holds a ConnLimiter slot for a
// connection's lifetime.
//
// # Concurrency
//
// Verifier, APIKeys and Claims are immutable and safe for concurrent use.
// Authorizer, KeyedLimiter and ConnLimiter are safe for concurrent use;
// each guards its state with one mutex. The Authorizer takes its mutex
// before a session's (SetUser, User, Done) and never while it calls Fail,
// and session never calls into the Authorizer while holding its own lock.
// Expiry timers run on their own goroutines (time.AfterFunc) and only call
// Session.Fail, which is safe from any goroutine.
package auth
