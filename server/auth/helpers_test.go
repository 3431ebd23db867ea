package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/waterspout/waterspout/server/auth/authtest"
	"github.com/waterspout/waterspout/session"
)

// Key material is generated at test time (package authtest, which the
// server's tests share); no private key is committed.
var (
	testSecret  = []byte("test-secret-0123456789-abcdefghijklmnop")
	otherSecret = []byte("another-secret-0123456789-abcdefghijkl")

	rsaKey   = authtest.RSAKey
	rsaKey2  = authtest.OtherRSAKey
	ecKey    = authtest.ECKey
	ecKey2   = authtest.OtherECKey
	ecKey384 = authtest.P384Key

	pemPublic  = authtest.PublicPEM
	pemPrivate = authtest.PrivatePEM
)

// sign signs arbitrary claims and headers, for tokens Mint refuses to make.
func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsFor returns valid connection claims for sub, valid for ttl.
func claimsFor(sub string, ttl time.Duration) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
}

func newVerifier(t testing.TB, cfg VerifierConfig) *Verifier {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = []Key{{Secret: testSecret}}
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// mint signs with the test secret unless cfg names a key.
func mint(t testing.TB, cfg MintConfig) string {
	t.Helper()
	if cfg.Key == nil && cfg.KeyFile == "" {
		cfg.Key = testSecret
	}
	if cfg.TTL == 0 {
		cfg.TTL = time.Hour
	}
	s, err := Mint(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newNode returns a node using a; the broker is closed when the test ends.
func newNode(t testing.TB, a *Authorizer) *session.Node {
	t.Helper()
	b := session.NewMemoryBroker(session.MemoryBrokerConfig{})
	t.Cleanup(func() { b.Close() })
	n, err := session.New(session.Config{Broker: b, Authorizer: a})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newSession(t testing.TB, n *session.Node) *session.Session {
	t.Helper()
	s, err := n.NewSession("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(session.Disconnect{Reason: "test over"}) })
	return s
}

func tokenRequest(tok string) *http.Request {
	target := "/connect/ws"
	if tok != "" {
		target += "?token=" + url.QueryEscape(tok)
	}
	return httptest.NewRequest(http.MethodGet, target, nil)
}

// code is the client-visible code of a command error; 0 for nil.
func code(err error) int {
	if err == nil {
		return 0
	}
	return session.AsError(err).Code
}

// tracked returns how many sessions hold a grant.
func (a *Authorizer) tracked() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.grants)
}
