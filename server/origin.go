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
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" { // includes "null" (sandboxed frames, file:)
		return false
	}
	// An origin is scheme://host[:port] and nothing else (RFC 6454): what a
	// browser sends. A user, a path, a query or a fragment is no page's
	// origin, and is not compared as if it were one.
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || u.Opaque != "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	host, port := splitOriginHost(scheme, strings.ToLower(u.Host))
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
	route := r.URL.Path
	if strings.HasPrefix(route, sockjsPrefix+"/") {
		route = sockjsPrefix
	}
	s.refusedOrigins.refused(r, route)
	return false
}
