package poll

import (
	"bytes"
	"net/http"
	"net/url"
)

// Limits of a JSONP callback: a dotted path of at most maxCallbackParts
// identifiers, each at most maxCallbackIdent characters.
const (
	maxCallbackParts = 4
	maxCallbackIdent = 64
)

// validCallback reports whether cb is a safe JSONP callback: a dotted path
// of 1 to 4 ASCII JavaScript identifiers of 1 to 64 characters
// ([A-Za-z_$][A-Za-z0-9_$]*). Nothing else reaches the script, so a caller
// cannot inject code through it.
func validCallback(cb string) bool {
	parts, n := 1, 0
	for i := 0; i < len(cb); i++ {
		c := cb[i]
		switch {
		case c == '.':
			if n == 0 || parts == maxCallbackParts {
				return false
			}
			parts, n = parts+1, 0
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c == '$':
		case '0' <= c && c <= '9':
			if n == 0 {
				return false
			}
		default:
			return false
		}
		if n++; n > maxCallbackIdent {
			return false
		}
	}
	return n > 0
}

// wrapJSONP appends /**/cb(body); to dst. The leading comment keeps the
// answer from starting with attacker-chosen bytes (Rosetta Flash and other
// content-sniffing attacks). U+2028 and U+2029 are legal in JSON strings but
// end a line in pre-ES2019 JavaScript, so they are escaped.
func wrapJSONP(dst []byte, cb string, body []byte) []byte {
	dst = append(dst, "/**/"...)
	dst = append(dst, cb...)
	dst = append(dst, '(')
	for {
		i := bytes.Index(body, []byte("\u2028"))
		if j := bytes.Index(body, []byte("\u2029")); j >= 0 && (i < 0 || j < i) {
			i = j
		}
		if i < 0 {
			break
		}
		dst = append(dst, body[:i]...)
		if body[i+2] == 0xA8 {
			dst = append(dst, `\u2028`...)
		} else {
			dst = append(dst, `\u2029`...)
		}
		body = body[i+3:]
	}
	dst = append(dst, body...)
	return append(dst, ");"...)
}

// jsonpOriginAllowed applies Config.CheckOrigin to a JSONP request. A script
// tag sends no Origin unless it is marked crossorigin, so the Referer's origin
// stands in for it. Without either (a page may suppress its Referer) the
// request is judged as it is: JSONP security rests on tokens.
func (h *Handler) jsonpOriginAllowed(r *http.Request) bool {
	if r.Header.Get("Origin") != "" {
		return h.cfg.CheckOrigin(r)
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	if err != nil || ref.Scheme == "" || ref.Host == "" {
		return h.cfg.CheckOrigin(r)
	}
	r2 := r.Clone(r.Context())
	r2.Header.Set("Origin", ref.Scheme+"://"+ref.Host)
	return h.cfg.CheckOrigin(r2)
}
