package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/server/auth"
	"github.com/waterspout/waterspout/session"
)

// FuzzAPICredentials checks the /api/* credential check against any
// Authorization header: it lets a request through only with the API key or
// a publisher token that verifies, refuses everything else with 401, never
// echoes the credential, and never panics.
func FuzzAPICredentials(f *testing.F) {
	const key = "fuzz-api-key-0123456789"
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: []auth.Key{{Secret: testSecret}}})
	if err != nil {
		f.Fatal(err)
	}
	a, err := newAPIAuth([]string{key}, v)
	if err != nil {
		f.Fatal(err)
	}
	// Every input is judged on its own: the limit on failed tokens per
	// address is TestCredentialFailuresLimited's.
	a.credFailures = nil
	pub, err := auth.Mint(auth.MintConfig{Sub: "b", Kind: auth.KindPublisher, Publish: []string{"*"}, TTL: time.Hour, Key: testSecret})
	if err != nil {
		f.Fatal(err)
	}
	conn, err := auth.Mint(auth.MintConfig{Sub: "b", Channels: []string{"*"}, TTL: time.Hour, Key: testSecret})
	if err != nil {
		f.Fatal(err)
	}
	for _, h := range []string{"", "Bearer " + key, "bearer  " + key + " ", "Basic " + key, "Bearer " + pub, "Bearer " + conn,
		"Bearer " + pub[:len(pub)-2], "Bearer a.b.c", "Bearer ..", "Bearer " + key + "x"} {
		f.Add(h)
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest(http.MethodPost, "/api/publish", nil)
		r.Header.Set("Authorization", h)
		c := e.NewContext(r, httptest.NewRecorder())
		var got *publisher
		reached := false
		err := a.middleware(func(c echo.Context) error {
			reached, got = true, publisherOf(c)
			return nil
		})(c)
		cred := auth.BearerToken(h)
		switch {
		case reached && got == nil:
			t.Fatalf("%q passed without a publisher", h)
		case reached && got.claims == nil && cred != key:
			t.Fatalf("%q passed as an API key", h)
		case reached && got.claims != nil:
			if _, err := v.VerifyPublisher(cred); err != nil {
				t.Fatalf("%q passed as a publisher token that does not verify: %v", h, err)
			}
		case !reached:
			var se *session.Error
			if !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
				t.Fatalf("%q refused with %v", h, err)
			}
			if len(cred) >= 8 && strings.Contains(se.Reason, cred) {
				t.Fatalf("the refusal %q echoes the credential", se.Reason)
			}
		}
	})
}
