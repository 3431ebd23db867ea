package auth

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// TokenFromRequest returns the connection token of a request: the `token`
// query parameter (browsers cannot set headers on WebSocket and EventSource)
// or else an `Authorization: Bearer` header. Other Authorization schemes are
// ignored rather than refused: a site behind HTTP Basic auth has browsers
// send Basic credentials on every request. Cookies are never read: a token
// in a cookie would ride along on cross-site requests.
func TokenFromRequest(r *http.Request) string {
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	return BearerToken(r.Header.Get("Authorization"))
}

// BearerToken returns the credentials of an `Authorization: Bearer …`
// header value, or "".
func BearerToken(header string) string {
	scheme, cred, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(cred)
}

// Redacted replaces the value of secret query parameters in log lines.
const Redacted = "REDACTED"

// RedactURL returns u as a string fit for a log line: the value of every
// query parameter with a secret name (see SecretParam; in any case, also
// when the name is percent-encoded) becomes REDACTED, and so does a password
// in the userinfo. The rest of the query is kept byte for byte.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if c.RawQuery != "" {
		c.RawQuery = redactQuery(c.RawQuery)
	}
	return c.Redacted()
}

// redactQuery splits on ';' as well as '&': net/url does not, but proxies
// and other servers may, and a log line should hide too much, not too little.
func redactQuery(q string) string {
	var b strings.Builder
	b.Grow(len(q))
	for q != "" {
		part := q
		sep := strings.IndexAny(q, "&;")
		if sep >= 0 {
			part, q = q[:sep], q[sep:]
		} else {
			q = ""
		}
		name, _, hasValue := strings.Cut(part, "=")
		if secretParam(name) && hasValue {
			b.WriteString(name)
			b.WriteString("=" + Redacted)
		} else {
			b.WriteString(part)
		}
		if q != "" { // the separator
			b.WriteByte(q[0])
			q = q[1:]
		}
	}
	return b.String()
}

// secretParam reads the name as net/url would (so `%74oken` is `token`)
// and, when it cannot be decoded, as written.
func secretParam(name string) bool {
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	return SecretParam(name)
}

// SecretParam reports whether a (decoded) query parameter name holds a
// secret whose value never reaches a log line: a name that contains
// "token", "secret", "password", "apikey" or "api_key", in any case.
func SecretParam(name string) bool {
	name = strings.ToLower(name)
	for _, s := range []string{"token", "secret", "password", "apikey", "api_key"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// IPKey returns the key under which a client address is rate limited: the
// address itself for IPv4 (and IPv4-mapped IPv6), the /64 prefix for IPv6,
// since one subscriber line usually holds a whole /64 and would otherwise
// get 2^64 fresh buckets.
func IPKey(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.Is4() || !addr.IsValid() {
		return addr.String()
	}
	p, err := addr.WithZone("").Prefix(64)
	if err != nil { // only for invalid addresses, excluded above
		return addr.String()
	}
	return p.String()
}
