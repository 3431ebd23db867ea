package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/waterspout/waterspout/server/auth"
)

// originPolicy decides which browser origins may connect or call the API.
type originPolicy struct {
	any      bool
	exact    map[string]struct{} // "scheme://host[:port]", lower case, no default port
	wildcard []wildcardOrigin
}

// wildcardOrigin matches scheme://<anything>.<suffix>[:port].
type wildcardOrigin struct {
	scheme, suffix, port string // suffix starts with "."
}

// parseOrigins reads the allow-list. Entries are "*", "scheme://host[:port]"
// or "scheme://*.domain[:port]".
func parseOrigins(list []string) (*originPolicy, error) {
	p := &originPolicy{exact: make(map[string]struct{})}
	for _, entry := range list {
		if entry == "*" {
			p.any = true
			continue
		}
		u, err := url.Parse(entry)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("allowed origin %q: want scheme://host[:port], scheme://*.domain or *", entry)
		}
		scheme := strings.ToLower(u.Scheme)
		host, port := splitOriginHost(scheme, strings.ToLower(u.Host))
		if rest, ok := strings.CutPrefix(host, "*."); ok {
			if rest == "" || strings.Contains(rest, "*") {
				return nil, fmt.Errorf("allowed origin %q: bad wildcard", entry)
			}
			p.wildcard = append(p.wildcard, wildcardOrigin{scheme: scheme, suffix: "." + rest, port: port})
			continue
		}
		if strings.Contains(host, "*") {
			return nil, fmt.Errorf("allowed origin %q: a wildcard must be the first label (*.domain)", entry)
		}
		p.exact[joinOrigin(scheme, host, port)] = struct{}{}
	}
	return p, nil
}

// check reports whether r may proceed. Requests without an Origin header
// pass: they do not come from a page (backends, native clients), and
// browsers always send Origin on WebSocket, CORS and POST requests. A
// same-origin request (Origin's host is the request's Host) always passes.
func (p *originPolicy) check(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	scheme, host, port, ok := parseOrigin(origin)
	if !ok { // includes "null" (sandboxed frames, file:)
		return false
	}
	// The scheme is not compared: behind a TLS-terminating proxy the request
	// arrives over http while the page is https.
	if reqHost, reqPort := splitOriginHost(scheme, strings.ToLower(r.Host)); reqHost == host && reqPort == port {
		return true
	}
	if _, ok := p.exact[joinOrigin(scheme, host, port)]; ok {
		return true
	}
	for _, w := range p.wildcard {
		if w.scheme == scheme && w.port == port && len(host) > len(w.suffix) && strings.HasSuffix(host, w.suffix) {
			return true
		}
	}
	return false
}

// parseOrigin reads an Origin header in the one form browsers send it
// (RFC 6454 and the WHATWG URL serializer): http or https, "://", a host
// of dot-separated labels (letters, digits, '-', '_'; IDNs in punycode) or
// a bracketed IPv6 address, and a port of digits only when it is not the
// default. Case is ignored. Anything else is no page's origin: user info,
// a path, a query, escapes ("app%2eexample.com"), an empty port
// ("app.example.com:"), brackets around a name. net/url reads several of
// those as the host they resemble, and comparing such a header as if a
// page had sent it is how an origin check is fooled. The host comes back
// without brackets and the port without the scheme's default, as
// splitOriginHost gives them.
func parseOrigin(origin string) (scheme, host, port string, ok bool) {
	scheme, rest, found := strings.Cut(strings.ToLower(origin), "://")
	if !found || (scheme != "http" && scheme != "https") {
		return "", "", "", false
	}
	if inner, after, bracketed := strings.Cut(strings.TrimPrefix(rest, "["), "]"); strings.HasPrefix(rest, "[") {
		if !bracketed || !strings.Contains(inner, ":") || net.ParseIP(inner) == nil {
			return "", "", "", false
		}
		host, rest = inner, after
	} else {
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			i = len(rest)
		}
		host, rest = rest[:i], rest[i:]
		if !validOriginHost(host) {
			return "", "", "", false
		}
	}
	if rest != "" {
		port = rest[1:]
		if rest[0] != ':' || !validPort(port) {
			return "", "", "", false
		}
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	return scheme, host, port, true
}

// validOriginHost reports whether h is non-empty dot-separated labels of
// lower-case letters, digits, '-' and '_', at most 253 bytes.
func validOriginHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validPort reports whether p is a port as a browser writes it: 1 to 65535
// in decimal, no sign, no leading zero.
func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// splitOriginHost splits host[:port], dropping the scheme's default port so
// that "https://a.com" and "https://a.com:443" compare equal.
func splitOriginHost(scheme, hostport string) (host, port string) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return strings.Trim(hostport, "[]"), ""
	}
	if (scheme == "http" && p == "80") || (scheme == "https" && p == "443") {
		p = ""
	}
	return h, p
}

func joinOrigin(scheme, host, port string) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}

// Refused origins are logged at WARN, since a page on an origin missing from
// the allow-list otherwise fails in silence: a browser cannot read a
// refused WebSocket handshake. The log is rate-limited, for a hostile page
// can send any Origin as often as it likes: each origin and route is
// logged at most once per refusedOriginEvery, and all of them together at
// most refusedOriginBurst lines, refilled at refusedOriginRate a second.
const (
	refusedOriginEvery = time.Minute
	refusedOriginRate  = 1
	refusedOriginBurst = 20
	refusedOriginKeys  = 10_000
	maxLoggedOrigin    = 200 // bytes of the Origin header in the log line
)

// refusedOrigins logs refused origins, rate-limited.
type refusedOrigins struct {
	log          *slog.Logger
	perOrigin    *auth.KeyedLimiter
	all          *auth.KeyedLimiter
	sockjsPrefix string
}

func newRefusedOrigins(log *slog.Logger, now func() time.Time) *refusedOrigins {
	return &refusedOrigins{
		log:       log,
		perOrigin: auth.NewKeyedLimiter(1/refusedOriginEvery.Seconds(), 1, refusedOriginKeys, now),
		all:       auth.NewKeyedLimiter(refusedOriginRate, refusedOriginBurst, 1, now),
	}
}

// refused logs that r's origin was refused on route (the mounted path: a
// SockJS request's session path is not part of it).
func (l *refusedOrigins) refused(r *http.Request, route string) {
	origin := r.Header.Get("Origin")
	if len(origin) > maxLoggedOrigin {
		origin = origin[:maxLoggedOrigin] + "…"
	}
	if !l.perOrigin.Allow(route+" "+origin) || !l.all.Allow("") {
		return
	}
	l.log.Warn("origin not allowed: add it to allowedOrigins (--allowed-origin) if this page is yours",
		"origin", origin, "route", route, "method", r.Method)
}

// checkOrigin is the origin check of every browser-facing route: the policy,
// with refusals logged.
func (s *Server) checkOrigin(r *http.Request) bool {
	if s.origins.check(r) {
		return true
	}
	s.metrics.originsRefused.Inc()
	route := r.URL.Path
	if strings.HasPrefix(route, sockjsPrefix+"/") {
		route = sockjsPrefix
	}
	s.refusedOrigins.refused(r, route)
	return false
}
