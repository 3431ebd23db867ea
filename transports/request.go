package transports

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/waterspout/waterspout/session"
)

// What the HTTP transports (SSE, long-poll, client publish) share: reading the
// channel set and resume cursor of a request, the JSON error body, the origin
// and CORS handling, and how a refusal maps to a status.

// StreamRequest is what an SSE or long-poll request names: its channels and
// where to resume each of them.
type StreamRequest struct {
	Channels []string // in request order, validated, no duplicates
	// Positions holds the resume position of each named channel the cursor
	// knows. A channel the cursor names but the request does not is left out.
	// The map is the caller's to update.
	Positions session.Cursor
	// HasCursor reports whether the request carried a cursor at all, even one
	// that names none of its channels.
	HasCursor bool
}

// ParseStreamRequest reads the `channel` values and the cursor of an SSE or
// long-poll request. A non-empty lastEventID (the header a browser sends when
// EventSource reconnects by itself) replaces `cursor` entirely: the browser
// keeps the original URL, so its cursor is older than the last event id.
// Errors are *session.Error: 400 for no, invalid or repeated channels, for
// channels whose cursor would not fit session.MaxCursorLen, for a
// malformed cursor and for a `cursor`, `token` or `client` given twice (see
// SingleValued), 429 for more than maxChannels channels.
func ParseStreamRequest(form url.Values, lastEventID string, maxChannels int) (StreamRequest, error) {
	if err := SingleValued(form, "cursor", "token", "client"); err != nil {
		return StreamRequest{}, err
	}
	chans := form["channel"]
	switch {
	case len(chans) == 0:
		return StreamRequest{}, &session.Error{Code: http.StatusBadRequest, Reason: "no channel"}
	case len(chans) > maxChannels:
		return StreamRequest{}, &session.Error{Code: http.StatusTooManyRequests, Reason: "too many channels"}
	}
	seen := make(map[string]struct{}, len(chans))
	for _, ch := range chans {
		if err := session.ValidateChannel(ch); err != nil {
			return StreamRequest{}, err
		}
		if _, dup := seen[ch]; dup {
			return StreamRequest{}, &session.Error{Code: http.StatusBadRequest, Reason: "duplicate channel " + ch}
		}
		seen[ch] = struct{}{}
	}
	if err := session.CheckCursorFits(chans); err != nil {
		return StreamRequest{}, err
	}
	raw := lastEventID
	if raw == "" {
		raw = form.Get("cursor")
	}
	all, err := session.DecodeCursor(raw)
	if err != nil {
		return StreamRequest{}, err
	}
	pos := make(session.Cursor, len(chans))
	for _, ch := range chans {
		if p, ok := all[ch]; ok {
			pos[ch] = p
		}
	}
	return StreamRequest{Channels: chans, Positions: pos, HasCursor: raw != ""}, nil
}

// SingleValued refuses, with 400, parameters that v holds more than once
// among names, or among all of v's names when none are given. Such a
// request says two things: this server reads the first value, where a
// proxy, gateway or WAF in front may read the last (the same rule as for
// a JSON name given twice, session.DuplicateName).
func SingleValued(v url.Values, names ...string) error {
	var twice []string
	if len(names) == 0 {
		for name, vals := range v {
			if len(vals) > 1 {
				twice = append(twice, name)
			}
		}
	}
	for _, name := range names {
		if len(v[name]) > 1 {
			twice = append(twice, name)
		}
	}
	if len(twice) == 0 {
		return nil
	}
	return &session.Error{Code: http.StatusBadRequest, Reason: fmt.Sprintf("the parameter %q is given more than once", slices.Min(twice))}
}

// ErrOriginForbidden answers a request whose origin Config.CheckOrigin refuses.
var ErrOriginForbidden = &session.Error{Code: http.StatusForbidden, Reason: "origin not allowed"}

// ErrorBody returns the JSON error body {"error":{"code":N,"reason":"..."}}
// for err (see session.AsError).
func ErrorBody(err error) []byte {
	b, jerr := json.Marshal(struct {
		Error *session.Error `json:"error"`
	}{session.AsError(err)})
	if jerr != nil { // an Error is an int and a string
		panic(fmt.Sprintf("transports: encode error body: %v", jerr))
	}
	return b
}

// WriteError answers err with its status (session.AsError's code) and the
// JSON error body.
func WriteError(w http.ResponseWriter, err error) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(session.AsError(err).Code)
	_, _ = w.Write(ErrorBody(err)) // the request is over either way
}

// AuthError maps a refusal from Config.Authenticate to what is answered: an
// *session.Error keeps its code; a session.Disconnect becomes 403 when it is
// DisconnectForbidden, 429 when DisconnectRateLimited and 401 otherwise (an
// invalid or expired token), with the disconnect's reason. Anything else is an
// authenticator failure, 500.
func AuthError(err error) *session.Error {
	var e *session.Error
	if errors.As(err, &e) {
		return e
	}
	var d session.Disconnect
	if !errors.As(err, &d) {
		return session.ErrInternal
	}
	switch d.Code {
	case session.DisconnectForbidden.Code:
		return &session.Error{Code: http.StatusForbidden, Reason: d.Reason}
	case session.DisconnectRateLimited.Code:
		return &session.Error{Code: http.StatusTooManyRequests, Reason: d.Reason}
	}
	return &session.Error{Code: http.StatusUnauthorized, Reason: d.Reason}
}

// RefusalDisconnect is the reason recorded on a session closed because its
// request was refused with e (it only reaches metrics and logs).
func RefusalDisconnect(e *session.Error) session.Disconnect {
	switch {
	case e.Code == http.StatusUnauthorized:
		return session.DisconnectInvalidToken
	case e.Code == http.StatusForbidden:
		return session.DisconnectForbidden
	case e.Code == http.StatusTooManyRequests:
		return session.DisconnectRateLimited
	case e.Code >= 500:
		return session.DisconnectInternal
	}
	return session.DisconnectBadRequest
}

// AllowOrigin runs check on r and, when it passes a request that names an
// Origin, sets the CORS headers that let that page read the answer with
// credentials. Echo's CORS middleware cannot be used here: it answers `*`
// without credentials. It reports whether the request may go on.
//
// A refused origin gets Access-Control-Allow-Origin without credentials:
// the caller answers it with nothing but the 403 error, and a page that is
// not allowed can then read why it cannot connect (the bundled client
// reports it as an `error` event) instead of seeing a bare network failure.
func AllowOrigin(w http.ResponseWriter, r *http.Request, check func(*http.Request) bool) bool {
	h := w.Header()
	h.Add("Vary", "Origin")
	if !check(r) {
		if o := r.Header.Get("Origin"); o != "" {
			h.Set("Access-Control-Allow-Origin", o)
		}
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	return true
}

// Preflight answers a CORS preflight (OPTIONS): 204 with the allowed methods
// for an allowed origin, 403 otherwise.
func Preflight(w http.ResponseWriter, r *http.Request, check func(*http.Request) bool, methods string) {
	if !AllowOrigin(w, r, check) {
		WriteError(w, ErrOriginForbidden)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// WithToken returns a copy of r whose query's `token` is tok, so that
// Config.Authenticate, which reads the query, sees a token that came in a
// body (a POST form, a JSON publish).
func WithToken(r *http.Request, tok string) *http.Request {
	r2 := r.Clone(r.Context())
	q := r2.URL.Query()
	q.Set("token", tok)
	r2.URL.RawQuery = q.Encode()
	r2.Form, r2.PostForm = nil, nil
	return r2
}

// MethodNotAllowed answers a request whose method the endpoint does not serve.
func MethodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	WriteError(w, &session.Error{Code: http.StatusMethodNotAllowed, Reason: "method not allowed"})
}

// Admit answers what comes before every browser-facing HTTP route the same
// way: the CORS preflight, a method the route does not take (allow lists
// those it does, OPTIONS included, as in an Allow header) and an origin the
// allow-list refuses. It reports whether the request goes on; when it does
// not, it has been answered.
func Admit(w http.ResponseWriter, r *http.Request, check func(*http.Request) bool, allow string) bool {
	if r.Method == http.MethodOptions {
		Preflight(w, r, check, allow)
		return false
	}
	if !slices.Contains(strings.Split(allow, ", "), r.Method) {
		MethodNotAllowed(w, allow)
		return false
	}
	if !AllowOrigin(w, r, check) {
		WriteError(w, ErrOriginForbidden)
		return false
	}
	return true
}

// PublishAnswer is the body of a successful publish, from the server API
// (POST /api/publish) and from a client (POST /connect/publish): where the
// publication landed.
type PublishAnswer struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
}
