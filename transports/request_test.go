package transports

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/session"
)

func TestParseStreamRequest(t *testing.T) {
	pos := func(e string, o uint64) session.Position { return session.Position{Epoch: e, Offset: o} }
	older := session.Cursor{"a": pos("e1", 2), "b": pos("e2", 7)}.Encode()
	newer := session.Cursor{"a": pos("e1", 5), "z": pos("e9", 1)}.Encode()
	for _, tc := range []struct {
		name      string
		query     string
		lastID    string
		channels  []string
		positions session.Cursor
		hasCursor bool
		code      int // expected error code, 0 for none
	}{
		{name: "one channel", query: "channel=a", channels: []string{"a"}, positions: session.Cursor{}},
		{name: "order kept", query: "channel=b&channel=a", channels: []string{"b", "a"}, positions: session.Cursor{}},
		{name: "cursor", query: "channel=a&channel=b&cursor=" + older, channels: []string{"a", "b"},
			positions: session.Cursor{"a": pos("e1", 2), "b": pos("e2", 7)}, hasCursor: true},
		{name: "cursor for other channels is ignored", query: "channel=a&cursor=" + session.Cursor{"z": pos("e", 1)}.Encode(),
			channels: []string{"a"}, positions: session.Cursor{}, hasCursor: true},
		{name: "Last-Event-ID replaces the cursor", query: "channel=a&channel=b&cursor=" + older, lastID: newer,
			channels: []string{"a", "b"}, positions: session.Cursor{"a": pos("e1", 5)}, hasCursor: true},
		{name: "Last-Event-ID alone", query: "channel=a", lastID: newer, channels: []string{"a"},
			positions: session.Cursor{"a": pos("e1", 5)}, hasCursor: true},
		{name: "empty cursor is no cursor", query: "channel=a&cursor=", channels: []string{"a"}, positions: session.Cursor{}},
		{name: "no channel", query: "cursor=" + older, code: 400},
		{name: "empty channel", query: "channel=", code: 400},
		{name: "invalid channel", query: "channel=a%0Ab", code: 400},
		{name: "duplicate", query: "channel=a&channel=b&channel=a", code: 400},
		{name: "too many", query: "channel=a&channel=b&channel=c&channel=d", code: 429},
		{name: "malformed cursor", query: "channel=a&cursor=%21%21", code: 400},
		{name: "malformed Last-Event-ID beats a good cursor", query: "channel=a&cursor=" + older, lastID: "AQ", code: 400},
		// One parameter, two values: which is meant? A gateway in front may
		// read the last where this reads the first.
		{name: "cursor twice", query: "channel=a&cursor=" + older + "&cursor=" + newer, code: 400},
		{name: "the same cursor twice", query: "channel=a&cursor=" + older + "&cursor=" + older, code: 400},
		{name: "token twice", query: "channel=a&token=x&token=y", code: 400},
		{name: "client twice", query: "channel=a&client=x&client=x", code: 400},
		{name: "other parameters twice are not read", query: "channel=a&t=1&t=2", channels: []string{"a"}, positions: session.Cursor{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			req, err := ParseStreamRequest(q, tc.lastID, 3)
			if tc.code != 0 {
				var e *session.Error
				if !errors.As(err, &e) || e.Code != tc.code {
					t.Fatalf("error %v, want code %d", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(req.Channels, tc.channels) || req.HasCursor != tc.hasCursor || req.Positions.Encode() != tc.positions.Encode() {
				t.Errorf("got %+v, want channels %v positions %v hasCursor %v", req, tc.channels, tc.positions, tc.hasCursor)
			}
		})
	}
}

func TestAuthError(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		reason string
	}{
		{session.DisconnectInvalidToken, 401, "invalid token"},
		{session.DisconnectTokenExpired, 401, "token expired"},
		{session.DisconnectForbidden, 403, "forbidden"},
		{session.DisconnectRateLimited, 429, "rate limited"},
		{&session.Error{Code: 403, Reason: "no"}, 403, "no"},
		{errors.New("jwks unreachable"), 500, "internal error"},
	} {
		if got := AuthError(tc.err); got.Code != tc.status || got.Reason != tc.reason {
			t.Errorf("AuthError(%v) = %v, want %d %s", tc.err, got, tc.status, tc.reason)
		}
	}
}

func TestAllowOrigin(t *testing.T) {
	check := func(r *http.Request) bool { o := r.Header.Get("Origin"); return o == "" || o == "http://ok.example" }
	for _, tc := range []struct {
		origin string
		ok     bool
		acao   string
	}{
		{"", true, ""},
		{"http://ok.example", true, "http://ok.example"},
		// Refused, but the page may read why: no credentials.
		{"http://evil.example", false, "http://evil.example"},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		ok := AllowOrigin(w, r, check)
		h := w.Header()
		if ok != tc.ok || h.Get("Access-Control-Allow-Origin") != tc.acao || h.Get("Vary") != "Origin" ||
			(tc.ok && tc.acao != "") != (h.Get("Access-Control-Allow-Credentials") == "true") {
			t.Errorf("origin %q: ok=%v headers %v", tc.origin, ok, h)
		}
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, session.ErrBadCursor)
	if w.Code != 400 || w.Body.String() != `{"error":{"code":400,"reason":"invalid cursor"}}` ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Errorf("%d %q %v", w.Code, w.Body, w.Header())
	}
}

// FuzzParseStreamRequest feeds arbitrary query strings and Last-Event-ID
// values. Whatever comes in, the parse either fails with a 400 or 429, or
// returns valid, distinct channels within the limit and positions only for
// those channels, taken from Last-Event-ID when it is set, with cursor,
// token and client given once at most.
func FuzzParseStreamRequest(f *testing.F) {
	const max = 4
	f.Fuzz(func(t *testing.T, rawQuery, lastID string) {
		q, _ := url.ParseQuery(rawQuery) // keeps what parsed, like net/http
		req, err := ParseStreamRequest(q, lastID, max)
		if err != nil {
			var e *session.Error
			if !errors.As(err, &e) || e.Code != 400 && e.Code != 429 {
				t.Fatalf("error %#v, want a 400 or 429 *session.Error", err)
			}
			return
		}
		if len(req.Channels) == 0 || len(req.Channels) > max {
			t.Fatalf("%d channels accepted", len(req.Channels))
		}
		for _, name := range []string{"cursor", "token", "client"} {
			if len(q[name]) > 1 {
				t.Fatalf("%s given %d times, accepted", name, len(q[name]))
			}
		}
		seen := map[string]bool{}
		for _, ch := range req.Channels {
			if session.ValidateChannel(ch) != nil || seen[ch] {
				t.Fatalf("channel %q accepted", ch)
			}
			seen[ch] = true
		}
		raw := lastID
		if raw == "" {
			raw = q.Get("cursor")
		}
		all, err := session.DecodeCursor(raw)
		if err != nil {
			t.Fatalf("accepted cursor %q that does not decode: %v", raw, err)
		}
		if req.HasCursor != (raw != "") {
			t.Fatalf("HasCursor %v for cursor %q", req.HasCursor, raw)
		}
		for ch, p := range req.Positions {
			if !seen[ch] || all[ch] != p {
				t.Fatalf("position %s=%v not from the cursor's named channels", ch, p)
			}
		}
		for ch := range seen {
			if _, ok := all[ch]; ok != (req.Positions[ch] != session.Position{}) {
				t.Fatalf("position of %s dropped", ch)
			}
		}
	})
}

func TestAdmit(t *testing.T) {
	allowed := func(r *http.Request) bool { return r.Header.Get("Origin") != "http://evil.test" }
	tests := []struct {
		name, method, origin string
		goesOn               bool
		status               int
	}{
		{"allowed method", "GET", "", true, 0},
		{"allowed origin", "GET", "http://app.test", true, 0},
		{"preflight", "OPTIONS", "http://app.test", false, http.StatusNoContent},
		{"preflight from a refused origin", "OPTIONS", "http://evil.test", false, http.StatusForbidden},
		{"other method", "DELETE", "", false, http.StatusMethodNotAllowed},
		{"prefix of an allowed method", "GE", "", false, http.StatusMethodNotAllowed},
		{"refused origin", "GET", "http://evil.test", false, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/connect/sse", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			w := httptest.NewRecorder()
			if got := Admit(w, r, allowed, "GET, OPTIONS"); got != tt.goesOn {
				t.Fatalf("Admit = %v, want %v", got, tt.goesOn)
			}
			if !tt.goesOn && w.Code != tt.status {
				t.Fatalf("answered %d, want %d", w.Code, tt.status)
			}
		})
	}
}
