package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// apiAuth checks backends on /api/*.
type apiAuth struct {
	// keys are SHA-256 digests of the configured keys: comparing digests
	// keeps the comparison constant-time in the key's length too.
	keys [][sha256.Size]byte
}

func newAPIAuth(keys []string) *apiAuth {
	a := &apiAuth{}
	for _, k := range keys {
		a.keys = append(a.keys, sha256.Sum256([]byte(k)))
	}
	return a
}

// open reports whether the API runs without keys (loopback only).
func (a *apiAuth) open() bool { return len(a.keys) == 0 }

// valid reports whether the Authorization header carries a configured key.
// Every key is compared, so the time taken does not tell which one matched.
func (a *apiAuth) valid(header string) bool {
	scheme, key, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return false
	}
	got := sha256.Sum256([]byte(key))
	match := 0
	for i := range a.keys {
		match |= subtle.ConstantTimeCompare(got[:], a.keys[i][:])
	}
	return match == 1
}

// middleware refuses requests without a valid key. Without configured keys
// (Validate allows that only on a loopback listener) it still refuses what
// may come from beyond this machine: a request that reached a non-loopback
// local address, one relayed by a proxy (a local reverse proxy would
// otherwise open the API to the world), and one whose Host is not a loopback
// name (a DNS-rebinding page in the user's browser).
func (a *apiAuth) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if a.open() {
			if reason := nonLocal(r); reason != "" {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="waterspout"`)
				return apiError(http.StatusUnauthorized, "an API key is required for %s", reason)
			}
			return next(c)
		}
		if !a.valid(r.Header.Get("Authorization")) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="waterspout"`)
			if r.Header.Get("Authorization") == "" {
				return apiError(http.StatusUnauthorized, "missing API key (Authorization: Bearer <key>)")
			}
			return apiError(http.StatusUnauthorized, "invalid API key")
		}
		return next(c)
	}
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
