package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/server/auth"
	"github.com/waterspout/waterspout/session"
)

// apiAuth checks backends on /api/*: an API key, or a publisher token when
// the server has token keys.
type apiAuth struct {
	keys   *auth.APIKeys  // nil without API keys
	tokens *auth.Verifier // nil without token keys
	// keyPublishers[i] is who API key i acts for: made once, not per
	// request (a publisher is never changed once made).
	keyPublishers []*publisher
	// credFailures bounds, per client address, the credentials (API keys
	// and publisher tokens) that fail (see credFailBurst); clientKey names
	// the address and limited counts a refusal. Set by New.
	credFailures *auth.KeyedLimiter
	clientKey    func(*http.Request) string
	limited      func(label string)
}

// Failed credentials on /api/* are limited per client address:
// credFailBurst, then credFailRate a second; beyond that a request that
// presents a credential is answered 429 before it is checked. Guessing an
// API key is then as slow as the limit, and a publisher token's signature
// costs 10–90 µs to check (BenchmarkVerify: HS256 to ES256), ten times a
// whole publish, so a flood of made-up tokens costs at most that many
// checks. An API key is checked before the limit (it is a hash, and a
// backend whose key is good is never refused for its neighbours' guesses);
// a token spends one before its check, so concurrent requests cannot all
// pass on the last, and gives it back when it verifies: a backend whose
// tokens are good is never limited, however busy. A request with no
// Authorization header counts nothing: there is nothing to guess with.
const (
	credFailBurst = 100
	credFailRate  = 10
)

func newAPIAuth(keys []string, tokens *auth.Verifier) (*apiAuth, error) {
	a := &apiAuth{tokens: tokens, credFailures: auth.NewKeyedLimiter(credFailRate, credFailBurst, maxLimiterKeys, nil),
		clientKey: func(*http.Request) string { return "" }, limited: func(string) {}}
	if len(keys) > 0 {
		k, err := auth.NewAPIKeys(keys...)
		if err != nil {
			return nil, err
		}
		a.keys = k
		for i := range keys {
			a.keyPublishers = append(a.keyPublishers, &publisher{limitKey: "key:" + strconv.Itoa(i)})
		}
	}
	return a, nil
}

// open reports whether the API runs without credentials (loopback only):
// no API key and no token key is configured.
func (a *apiAuth) open() bool { return a.keys == nil && a.tokens == nil }

// publisher is who a /api/* request acts for.
type publisher struct {
	// limitKey names the credential in the publish rate limiter: an API
	// key's position, or a digest of the token's subject. Never the key.
	limitKey string
	// claims are a publisher token's; nil for an API key, which may
	// publish anywhere.
	claims *auth.Claims
}

// publisherKey is the echo context key of the request's *publisher.
const publisherKey = "waterspout.publisher"

// publisherOf returns the request's publisher; nil on an open API.
func publisherOf(c echo.Context) *publisher {
	p, _ := c.Get(publisherKey).(*publisher)
	return p
}

// middleware refuses requests without valid credentials. Without configured
// credentials (Validate allows that only on a loopback listener) it still
// refuses what may come from beyond this machine: a request that reached a
// non-loopback local address, one relayed by a proxy (a local reverse proxy
// would otherwise open the API to the world), and one whose Host is not a
// loopback name (a DNS-rebinding page in the user's browser).
func (a *apiAuth) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if err := oneAuthorization(r); err != nil {
			return err
		}
		if a.open() {
			if reason := nonLocal(r); reason != "" {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="waterspout"`)
				return apiError(http.StatusUnauthorized, "an API key is required for %s", reason)
			}
			if r.Header.Get("Authorization") != "" {
				// A caller that sends a credential believes the server has
				// one; accepting anything would hide a server started
				// without its key.
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="waterspout", error="invalid_token"`)
				return apiError(http.StatusUnauthorized, "invalid API key: this server has no API key configured (set WATERSPOUT_API_KEY or --api-key on serve, or send no Authorization header to its open loopback API)")
			}
			return next(c)
		}
		header := r.Header.Get("Authorization")
		if i := a.keys.Index(header); i >= 0 {
			c.Set(publisherKey, a.keyPublishers[i])
			return next(c)
		}
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="waterspout"`)
		if header == "" {
			if a.tokens != nil {
				return apiError(http.StatusUnauthorized, "missing API key or publisher token (Authorization: Bearer <credential>)")
			}
			return apiError(http.StatusUnauthorized, "missing API key (Authorization: Bearer <key>)")
		}
		key := a.clientKey(r)
		if !a.credFailures.Allow(key) {
			a.limited(limitCredFailures)
			c.Response().Header().Set("Retry-After", "1")
			return apiError(http.StatusTooManyRequests, "rate limited: too many API keys or publisher tokens that failed verification from this address")
		}
		if cred := auth.BearerToken(header); a.tokens != nil && strings.Count(cred, ".") == 2 {
			claims, err := a.tokens.VerifyPublisher(cred)
			if err != nil {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="waterspout", error="invalid_token"`)
				reason := "invalid publisher token"
				var te *auth.TokenError
				if errors.As(err, &te) { // a fixed text that never holds the token
					reason += ": " + te.Reason
				}
				return apiError(http.StatusUnauthorized, "%s", reason)
			}
			a.credFailures.Refund(key, 1)
			sum := sha256.Sum256([]byte(claims.Subject))
			c.Set(publisherKey, &publisher{limitKey: "sub:" + hex.EncodeToString(sum[:16]), claims: claims})
			return next(c)
		}
		return apiError(http.StatusUnauthorized, "invalid API key")
	}
}

// errNotGranted answers a publisher token used beyond its `publish` patterns.
func errNotGranted(ch string) error {
	return &session.Error{Code: http.StatusForbidden, Reason: ch + ": the publisher token does not grant this channel"}
}

// mayPublish refuses a channel a publisher token does not grant. API keys
// and the open API may publish anywhere.
func mayPublish(p *publisher, ch string) error {
	if p == nil || p.claims == nil || auth.PublisherAllowed(p.claims, ch) {
		return nil
	}
	return errNotGranted(ch)
}

// mayRead refuses the history of a channel a publisher token grants neither
// for publishing nor in its `channels` patterns.
func mayRead(p *publisher, ch string) error {
	if p == nil || p.claims == nil || auth.PublisherAllowed(p.claims, ch) || p.claims.CanSubscribe(ch) {
		return nil
	}
	return errNotGranted(ch)
}

// nonLocal returns why a request may not come from this machine, or "".
func nonLocal(r *http.Request) string {
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ta, ok := la.(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
			return "requests from the network"
		}
	}
	for _, h := range []string{"X-Forwarded-For", "X-Real-Ip", "Forwarded"} {
		if r.Header.Get(h) != "" {
			return "proxied requests"
		}
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if !isLoopbackHost(strings.Trim(host, "[]")) {
		return "requests to host " + truncate(host, 64)
	}
	return ""
}

// oneAuthorization refuses a request with two Authorization headers. The
// header is not a list (RFC 9110): which credential would be meant? A
// gateway in front may check the last, where Header.Get reads the first.
func oneAuthorization(r *http.Request) error {
	if len(r.Header.Values("Authorization")) > 1 {
		return apiError(http.StatusBadRequest, "the Authorization header is given more than once")
	}
	return nil
}
