package poll

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/transports"
)

func TestJSONP(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}})
	for _, cb := range []string{"cb", "jQuery.ws_1$.on_message", "$", "_"} {
		t.Run(cb, func(t *testing.T) {
			r := e.send(t, http.MethodGet, query("channel", "a", "callback", cb), nil)
			wiretest.CheckHeaders(t, r.Header, map[string]string{
				"Content-Type":           "application/javascript; charset=utf-8",
				"X-Content-Type-Options": "nosniff",
				"Cache-Control":          "no-store",
			})
			a := decodeJSONP(t, r, cb)
			if len(a.Messages) != 2 || a.Messages[0].Type != "hello" || a.Messages[0].Transport != "jsonp" || a.Messages[1].Type != "subscribed" {
				t.Fatalf("frames %+v, want a jsonp hello and subscribed", a.Messages)
			}

			done := e.pollAsync(query("channel", "a", "callback", cb, "cursor", *a.Cursor))
			e.WaitSessions(t, 1)
			e.publish(t, "a", 7, 7)
			held := decodeJSONP(t, <-done, cb)
			if got := numbers(t, held.Messages, "a"); !slices.Equal(got, []int{7}) {
				t.Errorf("held JSONP poll got %v, want [7]", got)
			}
		})
	}
}

func TestJSONPRefusals(t *testing.T) {
	e := newEnv(t, envConfig{Options: Options{Timeout: hour}})
	t.Run("invalid callback", func(t *testing.T) {
		for _, cb := range []string{"", "alert(1)", "a-b", "1a", "a..b", ".a", "a.", "a.b.c.d.e", strings.Repeat("a", 65), "café", "a b", "a\u2028"} {
			r := e.send(t, http.MethodGet, query("channel", "a", "callback", cb), nil)
			if r.Status != 400 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("callback %q: %d %q %v, want a 400 JSON error", cb, r.Status, r.Body, r.Header)
			}
		}
		r, _ := e.do(context.Background(), http.MethodGet, query("channel", "a", "callback", "a", "callback", "b"), nil)
		if r.Status != 400 {
			t.Errorf("two callbacks: %d, want 400", r.Status)
		}
	})
	// With a callable callback, errors are a 200 script that passes the
	// error to it: a script tag cannot read a status.
	for _, tc := range []struct {
		name   string
		extra  []string
		header map[string]string
		code   int
	}{
		{"invalid channel", []string{"channel", "a b"}, nil, 400},
		{"malformed cursor", []string{"channel", "a", "cursor", "AQ"}, nil, 400},
		{"Referer of a page not allowed", []string{"channel", "a"}, map[string]string{"Referer": "http://evil.example/page?x=1"}, 403},
		{"Origin not allowed", []string{"channel", "a"}, map[string]string{"Origin": "http://evil.example", "Referer": wiretest.AllowedOrigin + "/"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(t, http.MethodGet, query(append([]string{"callback", "cb"}, tc.extra...)...), tc.header)
			if a := decodeJSONP(t, r, "cb"); a.Error == nil || a.Error.Code != tc.code || a.Messages != nil {
				t.Errorf("answer %s, want cb({\"error\":{\"code\":%d,…}})", r.Body, tc.code)
			}
			e.WaitSessions(t, 0)
		})
	}
	t.Run("Referer of an allowed page", func(t *testing.T) {
		r := e.send(t, http.MethodGet, query("callback", "cb", "channel", "a"), map[string]string{"Referer": wiretest.AllowedOrigin + "/app/index.html"})
		if a := decodeJSONP(t, r, "cb"); len(a.Messages) != 2 {
			t.Errorf("answer %s, want hello and subscribed", r.Body)
		}
	})
}

func TestWrapJSONP(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"a":1}`, `/**/cb({"a":1});`},
		{"{\"s\":\"x\u2028y\u2029z\u2028\"}", `/**/cb({"s":"x\u2028y\u2029z\u2028"});`},
		{"{\"s\":\"\u2027\u202a\"}", "/**/cb({\"s\":\"\u2027\u202a\"});"},
	} {
		if got := string(wrapJSONP(nil, "cb", []byte(tc.body))); got != tc.want {
			t.Errorf("wrapJSONP(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// callbackPattern is the rule validCallback implements by hand.
var callbackPattern = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]{0,63}(\.[A-Za-z_$][A-Za-z0-9_$]{0,63}){0,3}$`)

// FuzzValidCallback checks validCallback against the regular expression it
// implements. Seeds: testdata/fuzz.
func FuzzValidCallback(f *testing.F) {
	f.Fuzz(func(t *testing.T, cb string) {
		if got, want := validCallback(cb), callbackPattern.MatchString(cb); got != want {
			t.Fatalf("validCallback(%q) = %v, the pattern says %v", cb, got, want)
		}
	})
}

// TestPollTimeoutDefault keeps the documented default.
func TestPollTimeoutDefault(t *testing.T) {
	e := newEnv(t, envConfig{})
	cfg := transports.Config{Node: e.Node, CheckOrigin: func(*http.Request) bool { return true }}
	h, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if h.opts.Timeout != 25*time.Second || h.opts.Linger != 10*time.Millisecond {
		t.Errorf("defaults %+v", h.opts)
	}
}
