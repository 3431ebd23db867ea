package server

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
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
