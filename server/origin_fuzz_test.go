package server

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// browserOrigin is the form a browser serializes an origin in (RFC 6454,
// WHATWG URL): scheme, "://", a host of labels of letters, digits, '-' and '_' (IDNs
// in punycode) or a bracketed IPv6 address, and a port only when it is not
// the scheme's default. It is written without net/url on purpose, as the
// reference the policy is held to.
var browserOrigin = regexp.MustCompile(`^(https?)://([a-z0-9_-]+(?:\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\])(?::([1-9][0-9]{0,4}))?$`)

// FuzzOriginCheck holds the origin policy, which reads the Origin header of
// any request, to two rules: it never panics, and what it lets through is
// an origin a browser could send for an allowed page: listed, under a
// listed wildcard, or the server's own host. An Origin in any other form
// (escapes, user info, empty ports, odd brackets) is refused, since no
// page has it and comparing it as if it were one is how a check gets
// fooled.
func FuzzOriginCheck(f *testing.F) {
	for _, s := range []string{
		"https://app.example.com", "https://app.example.com:443", "https://a.b.example.org:8443",
		"http://localhost:3000", "http://push.example.net", "https://push.example.net:443",
		"https://app%2eexample.com", "https://app.example.com:", "https://evil@app.example.com",
		"https://[app.example.com]", "http://[::1]:3000", "HTTPS://APP.EXAMPLE.COM", "null", "",
		"https://app.example.com.", "https://xn--bcher-kva.example.org:8443", "https://app.example.com:0443",
	} {
		f.Add(s)
	}
	p, err := parseOrigins([]string{"https://app.example.com", "https://*.example.org:8443", "http://localhost:3000", "http://[::1]:3000"})
	if err != nil {
		f.Fatal(err)
	}
	allowed := func(scheme, host, port string) bool {
		switch {
		case scheme+"://"+host+":"+port == "http://localhost:3000", scheme+"://"+host+":"+port == "http://[::1]:3000":
			return true
		case scheme == "https" && host == "app.example.com" && port == "":
			return true
		case scheme == "https" && port == "8443" && strings.HasSuffix(host, ".example.org") && len(host) > len(".example.org"):
			return true
		}
		// The server's own host, push.example.net, on the scheme's default port.
		return host == "push.example.net" && port == ""
	}
	f.Fuzz(func(t *testing.T, origin string) {
		r := httptest.NewRequest("GET", "http://push.example.net/connect/ws", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if !p.check(r) || origin == "" {
			return
		}
		m := browserOrigin.FindStringSubmatch(strings.ToLower(origin))
		if m == nil {
			t.Fatalf("%q let through, but no browser sends an origin in that form", origin)
		}
		scheme, host, port := m[1], m[2], m[3]
		if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			port = ""
		}
		if !allowed(scheme, host, port) {
			t.Fatalf("%q let through: %s://%s port %q is not allowed", origin, scheme, host, port)
		}
	})
}
