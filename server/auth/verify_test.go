package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/waterspout/waterspout/session"
)

func TestVerifyRejects(t *testing.T) {
	rsaPub := pemPublic(t, &rsaKey().PublicKey)
	ecPub := pemPublic(t, &ecKey().PublicKey)
	hs := jwt.SigningMethodHS256
	valid := func() jwt.MapClaims { return claimsFor("17", time.Hour) }
	with := func(kv ...any) jwt.MapClaims {
		c := valid()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	b64 := base64.RawURLEncoding.EncodeToString
	segments := func(tok string) []string { return strings.Split(tok, ".") }
	expired, invalidTok := session.DisconnectTokenExpired, session.DisconnectInvalidToken

	cases := []struct {
		name  string
		cfg   VerifierConfig // Keys nil: the test secret only (HS256)
		token func(t *testing.T) string
		want  session.Disconnect
	}{
		{"empty", VerifierConfig{}, func(*testing.T) string { return "" }, invalidTok},
		{"garbage", VerifierConfig{}, func(*testing.T) string { return "not a token" }, invalidTok},
		{"two segments", VerifierConfig{}, func(*testing.T) string { return "eyJhbGciOiJIUzI1NiJ9.e30" }, invalidTok},
		{"four segments", VerifierConfig{}, func(t *testing.T) string { return sign(t, hs, testSecret, valid(), nil) + ".x" }, invalidTok},
		{"expired", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("exp", time.Now().Add(-time.Hour).Unix()), nil)
		}, expired},
		{"expired beyond the leeway", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("exp", time.Now().Add(-DefaultLeeway-2*time.Second).Unix()), nil)
		}, expired},
		{"not yet valid", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("nbf", time.Now().Add(time.Minute).Unix()), nil)
		}, invalidTok},
		{"issued in the future", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("iat", time.Now().Add(time.Minute).Unix()), nil)
		}, invalidTok},
		{"HS384 when only HS256 is allowed", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS384, testSecret, valid(), nil)
		}, invalidTok},
		{"HS512 when only HS256 is allowed", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS512, testSecret, valid(), nil)
		}, invalidTok},
		{"alg none", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid(), nil)
		}, invalidTok},
		{"alg none with a signature", VerifierConfig{}, func(t *testing.T) string {
			s := segments(sign(t, hs, testSecret, valid(), nil))
			return b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + s[1] + "." + s[2]
		}, invalidTok},
		{"alg NoNe", VerifierConfig{}, func(t *testing.T) string {
			s := segments(sign(t, hs, testSecret, valid(), nil))
			return b64([]byte(`{"alg":"NoNe"}`)) + "." + s[1] + "."
		}, invalidTok},
		{"alg missing", VerifierConfig{}, func(t *testing.T) string {
			s := segments(sign(t, hs, testSecret, valid(), nil))
			return b64([]byte(`{"typ":"JWT"}`)) + "." + s[1] + "." + s[2]
		}, invalidTok},
		{"wrong secret", VerifierConfig{}, func(t *testing.T) string { return sign(t, hs, otherSecret, valid(), nil) }, invalidTok},
		{"RS256 when only HS256 is allowed", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, rsaKey(), valid(), nil)
		}, invalidTok},
		{"HMAC/RSA confusion: HS256 signed with the RSA public key, RSA-only verifier",
			VerifierConfig{Keys: []Key{{PublicKeyPEM: rsaPub}}},
			func(t *testing.T) string { return sign(t, hs, rsaPub, valid(), nil) }, invalidTok},
		{"HMAC/RSA confusion: HS256 signed with the RSA public key, RSA and HMAC verifier",
			VerifierConfig{Keys: []Key{{PublicKeyPEM: rsaPub}, {Secret: testSecret}}},
			func(t *testing.T) string { return sign(t, hs, rsaPub, valid(), nil) }, invalidTok},
		{"HMAC/RSA confusion: kid names the RSA key",
			VerifierConfig{Keys: []Key{{ID: "rsa", PublicKeyPEM: rsaPub}, {ID: "hs", Secret: testSecret}}},
			func(t *testing.T) string { return sign(t, hs, rsaPub, valid(), map[string]any{"kid": "rsa"}) }, invalidTok},
		{"HMAC/ECDSA confusion", VerifierConfig{Keys: []Key{{PublicKeyPEM: ecPub}}},
			func(t *testing.T) string { return sign(t, hs, ecPub, valid(), nil) }, invalidTok},
		{"RS256 signed by another RSA key", VerifierConfig{Keys: []Key{{PublicKeyPEM: rsaPub}}},
			func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rsaKey2(), valid(), nil) }, invalidTok},
		{"ES256 signed by another EC key", VerifierConfig{Keys: []Key{{PublicKeyPEM: ecPub}}},
			func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, ecKey2(), valid(), nil) }, invalidTok},
		{"ES256 to an RSA verifier", VerifierConfig{Keys: []Key{{PublicKeyPEM: rsaPub}}},
			func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, ecKey(), valid(), nil) }, invalidTok},
		{"PS256 with the right RSA key", VerifierConfig{Keys: []Key{{PublicKeyPEM: rsaPub}}},
			func(t *testing.T) string { return sign(t, jwt.SigningMethodPS256, rsaKey(), valid(), nil) }, invalidTok},
		{"missing sub", VerifierConfig{}, func(t *testing.T) string { return sign(t, hs, testSecret, with("sub", nil), nil) }, invalidTok},
		{"empty sub", VerifierConfig{}, func(t *testing.T) string { return sign(t, hs, testSecret, with("sub", ""), nil) }, invalidTok},
		{"sub not a string", VerifierConfig{}, func(t *testing.T) string { return sign(t, hs, testSecret, with("sub", 17), nil) }, invalidTok},
		{"missing exp", VerifierConfig{}, func(t *testing.T) string { return sign(t, hs, testSecret, with("exp", nil), nil) }, invalidTok},
		{"exp not a number", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("exp", "tomorrow"), nil)
		}, invalidTok},
		{"tampered payload", VerifierConfig{}, func(t *testing.T) string {
			s := segments(sign(t, hs, testSecret, valid(), nil))
			forged := b64([]byte(`{"sub":"admin","exp":` + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + `,"channels":["*"]}`))
			return s[0] + "." + forged + "." + s[2]
		}, invalidTok},
		{"tampered signature", VerifierConfig{}, func(t *testing.T) string {
			s := segments(sign(t, hs, testSecret, valid(), nil))
			sig, err := base64.RawURLEncoding.DecodeString(s[2])
			if err != nil {
				t.Fatal(err)
			}
			sig[len(sig)/2] ^= 1
			return s[0] + "." + s[1] + "." + b64(sig)
		}, invalidTok},
		{"signature stripped", VerifierConfig{}, func(t *testing.T) string {
			s := segments(sign(t, hs, testSecret, valid(), nil))
			return s[0] + "." + s[1] + "."
		}, invalidTok},
		{"wrong issuer", VerifierConfig{Issuer: "https://app.example"}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("iss", "https://evil.example"), nil)
		}, invalidTok},
		{"missing issuer", VerifierConfig{Issuer: "https://app.example"}, func(t *testing.T) string {
			return sign(t, hs, testSecret, valid(), nil)
		}, invalidTok},
		{"wrong audience", VerifierConfig{Audience: "waterspout"}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("aud", []string{"billing"}), nil)
		}, invalidTok},
		{"missing audience", VerifierConfig{Audience: "waterspout"}, func(t *testing.T) string {
			return sign(t, hs, testSecret, valid(), nil)
		}, invalidTok},
		{"oversized", VerifierConfig{}, func(t *testing.T) string {
			chans := make([]string, 0, 1000)
			for i := range 1000 {
				chans = append(chans, "orders:"+strings.Repeat("x", i%10))
			}
			tok := sign(t, hs, testSecret, with("channels", chans), nil)
			if len(tok) <= DefaultMaxTokenBytes {
				t.Fatalf("token of %d bytes is not oversized", len(tok))
			}
			return tok
		}, invalidTok},
		{"pattern with an inner star", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("channels", []string{"news", "a*b"}), nil)
		}, invalidTok},
		{"pattern with two stars", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("channels", []string{"orders:**"}), nil)
		}, invalidTok},
		{"empty pattern", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("channels", []string{""}), nil)
		}, invalidTok},
		{"bad publish pattern", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("publish", []string{"chat room"}), nil)
		}, invalidTok},
		{"channels not a list", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("channels", "news"), nil)
		}, invalidTok},
		{"unknown kind", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("kind", "admin"), nil)
		}, invalidTok},
		{"unknown kid", VerifierConfig{Keys: []Key{{ID: "a", Secret: testSecret}}}, func(t *testing.T) string {
			return sign(t, hs, testSecret, valid(), map[string]any{"kid": "b"})
		}, invalidTok},
		{"kid not a string", VerifierConfig{Keys: []Key{{ID: "7", Secret: testSecret}}}, func(t *testing.T) string {
			return sign(t, hs, testSecret, valid(), map[string]any{"kid": 7})
		}, invalidTok},
		{"kid names another key", VerifierConfig{Keys: []Key{{ID: "a", Secret: testSecret}, {ID: "b", Secret: otherSecret}}},
			func(t *testing.T) string { return sign(t, hs, testSecret, valid(), map[string]any{"kid": "b"}) }, invalidTok},
		{"critical header", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, valid(), map[string]any{"crit": []string{"exp"}})
		}, invalidTok},
		{"expired and wrong issuer", VerifierConfig{Issuer: "https://app.example"}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("exp", time.Now().Add(-time.Hour).Unix(), "iss", "https://evil.example"), nil)
		}, invalidTok},
		{"expired and badly signed", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, otherSecret, with("exp", time.Now().Add(-time.Hour).Unix()), nil)
		}, invalidTok},
		{"expired with a bad pattern", VerifierConfig{}, func(t *testing.T) string {
			return sign(t, hs, testSecret, with("exp", time.Now().Add(-time.Hour).Unix(), "channels", []string{"*x"}), nil)
		}, invalidTok},
		{"padded base64", VerifierConfig{}, func(t *testing.T) string {
			s := segments(sign(t, hs, testSecret, valid(), nil))
			return s[0] + "." + s[1] + "." + s[2] + "="
		}, invalidTok},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, tc.cfg)
			tok := tc.token(t)
			c, err := v.Verify(tok)
			if err == nil {
				t.Fatalf("verified: %+v", c)
			}
			var d session.Disconnect
			if !errors.As(err, &d) || d != tc.want {
				t.Fatalf("err = %v, want disconnect %d", err, tc.want.Code)
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("err %T is not a *TokenError", err)
			}
			for _, part := range append(segments(tok), tok) {
				if len(part) >= 8 && strings.Contains(err.Error(), part) {
					t.Fatalf("error %q holds part of the token", err)
				}
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	rsaPub := pemPublic(t, &rsaKey().PublicKey)
	ecPub := pemPublic(t, &ecKey().PublicKey)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey().PublicKey)})
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey().PublicKey, ecKey())
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	hs := jwt.SigningMethodHS256
	cases := []struct {
		name  string
		cfg   VerifierConfig
		token func(t *testing.T) string
	}{
		{"HS256", VerifierConfig{}, func(t *testing.T) string { return mint(t, MintConfig{Sub: "17"}) }},
		{"RS256", VerifierConfig{Keys: []Key{{PublicKeyPEM: rsaPub}}}, func(t *testing.T) string {
			return mint(t, MintConfig{Sub: "17", Key: pemPrivate(t, rsaKey())})
		}},
		{"RS256, PKCS#1 public key", VerifierConfig{Keys: []Key{{PublicKeyPEM: pkcs1, Alg: RS256}}}, func(t *testing.T) string {
			return mint(t, MintConfig{Sub: "17", Key: pemPrivate(t, rsaKey())})
		}},
		{"ES256", VerifierConfig{Keys: []Key{{PublicKeyPEM: ecPub}}}, func(t *testing.T) string {
			return mint(t, MintConfig{Sub: "17", Key: pemPrivate(t, ecKey())})
		}},
		{"ES256, key from a certificate", VerifierConfig{Keys: []Key{{PublicKeyPEM: cert}}}, func(t *testing.T) string {
			return mint(t, MintConfig{Sub: "17", Key: pemPrivate(t, ecKey())})
		}},
		{"rotation without kid: old secret", VerifierConfig{Keys: []Key{{Secret: otherSecret}, {Secret: testSecret}}},
			func(t *testing.T) string { return mint(t, MintConfig{Sub: "17", Key: testSecret}) }},
		{"rotation without kid: new secret", VerifierConfig{Keys: []Key{{Secret: otherSecret}, {Secret: testSecret}}},
			func(t *testing.T) string { return mint(t, MintConfig{Sub: "17", Key: otherSecret}) }},
		{"kid selects", VerifierConfig{Keys: []Key{{ID: "a", Secret: otherSecret}, {ID: "b", Secret: testSecret}}},
			func(t *testing.T) string { return mint(t, MintConfig{Sub: "17", KeyID: "b"}) }},
		{"mixed algorithms", VerifierConfig{Keys: []Key{{Secret: testSecret}, {PublicKeyPEM: rsaPub}, {PublicKeyPEM: ecPub}}},
			func(t *testing.T) string { return mint(t, MintConfig{Sub: "17", Key: pemPrivate(t, ecKey())}) }},
		{"expired within the leeway", VerifierConfig{}, func(t *testing.T) string {
			c := claimsFor("17", 0)
			c["exp"] = time.Now().Add(-2 * time.Second).Unix()
			return sign(t, hs, testSecret, c, nil)
		}},
		{"not before, within the leeway", VerifierConfig{}, func(t *testing.T) string {
			c := claimsFor("17", time.Hour)
			c["nbf"] = time.Now().Add(2 * time.Second).Unix()
			return sign(t, hs, testSecret, c, nil)
		}},
		{"issuer and one of several audiences", VerifierConfig{Issuer: "https://app.example", Audience: "waterspout"},
			func(t *testing.T) string {
				return mint(t, MintConfig{Sub: "17", Issuer: "https://app.example", Audience: []string{"billing", "waterspout"}})
			}},
		{"largest token", VerifierConfig{MaxTokenBytes: 64 << 10}, func(t *testing.T) string {
			chans := make([]string, 1000)
			for i := range chans {
				chans[i] = "orders:" + strings.Repeat("x", i%10)
			}
			return mint(t, MintConfig{Sub: "17", Channels: chans})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, tc.cfg)
			c, err := v.Verify(tc.token(t))
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "17" || c.Kind != KindConnection || c.ExpiresAt.IsZero() {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
}

func TestVerifyClaims(t *testing.T) {
	v := newVerifier(t, VerifierConfig{})
	now := time.Now()
	tok := mint(t, MintConfig{Sub: "17", Channels: []string{"orders:*", "news"}, Publish: []string{"chat:17"},
		TTL: time.Hour, Issuer: "me", Audience: []string{"ws"}, Now: func() time.Time { return now }})
	c, err := v.VerifyConnection(tok)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.Subject != "17", c.Kind != KindConnection, c.Issuer != "me":
		t.Errorf("claims = %+v", c)
	case !slices.Equal(c.Channels, []string{"orders:*", "news"}), !slices.Equal(c.Publish, []string{"chat:17"}):
		t.Errorf("patterns = %q, %q", c.Channels, c.Publish)
	case !slices.Equal(c.Audience, []string{"ws"}):
		t.Errorf("audience = %q", c.Audience)
	case !c.ExpiresAt.Equal(now.Add(time.Hour).Truncate(time.Second)), !c.IssuedAt.Equal(now.Truncate(time.Second)):
		t.Errorf("times = %v, %v", c.IssuedAt, c.ExpiresAt)
	}
	if _, err := v.VerifyPublisher(tok); !errors.Is(err, session.DisconnectInvalidToken) {
		t.Errorf("connection token as a publisher token: %v", err)
	}
	pub := mint(t, MintConfig{Sub: "backend", Publish: []string{"orders:*"}, Kind: KindPublisher})
	if _, err := v.VerifyConnection(pub); !errors.Is(err, session.DisconnectInvalidToken) {
		t.Errorf("publisher token as a connection token: %v", err)
	}
	pc, err := v.VerifyPublisher(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		claims *Claims
		ch     string
		want   bool
	}{
		{pc, "orders:1", true},
		{pc, "orders", false},
		{pc, "news", false},
		{c, "chat:17", false}, // a connection token never publishes through the API
		{nil, "orders:1", false},
	} {
		if got := PublisherAllowed(tc.claims, tc.ch); got != tc.want {
			t.Errorf("PublisherAllowed(%v, %q) = %v", tc.claims != nil && tc.claims.Kind == KindPublisher, tc.ch, got)
		}
	}
}

func TestNewVerifierRefuses(t *testing.T) {
	rsaPub := pemPublic(t, &rsaKey().PublicKey)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	small := pemPublic(t, &weak.PublicKey)
	p384 := pemPublic(t, &ecKey384().PublicKey)
	cases := []struct {
		name string
		keys []Key
		want string
	}{
		{"no keys", nil, "at least one key"},
		{"no material", []Key{{ID: "a"}}, "exactly one"},
		{"two materials", []Key{{Secret: testSecret, PublicKeyPEM: rsaPub}}, "exactly one"},
		{"short secret", []Key{{Secret: []byte("short")}}, "shorter than 32"},
		{"PEM as a secret", []Key{{Secret: rsaPub}}, "PEM"},
		{"private key as the public key", []Key{{PublicKeyPEM: pemPrivate(t, rsaKey())}}, "private key"},
		{"not PEM", []Key{{PublicKeyPEM: []byte("hello")}}, "no PEM block"},
		{"RSA 1024", []Key{{PublicKeyPEM: small}}, "at least 2048"},
		{"P-384", []Key{{PublicKeyPEM: p384}}, "P-256"},
		{"secret declared RS256", []Key{{Secret: testSecret, Alg: RS256}}, "does not fit"},
		{"RSA key declared HS256", []Key{{PublicKeyPEM: rsaPub, Alg: HS256}}, "does not fit"},
		{"duplicate kid", []Key{{ID: "a", Secret: testSecret}, {ID: "a", Secret: otherSecret}}, "used twice"},
		{"missing file", []Key{{File: filepath.Join(t.TempDir(), "nope")}}, "read key file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier(VerifierConfig{Keys: tc.keys})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), string(testSecret)) {
				t.Fatalf("error %q holds the secret", err)
			}
		})
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, append(testSecret, "\r\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(pemFile, pemPublic(t, &ecKey().PublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	privFile := filepath.Join(dir, "key.priv.pem")
	if err := os.WriteFile(privFile, pemPrivate(t, ecKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, VerifierConfig{Keys: []Key{{File: secretFile}, {File: pemFile}}})
	if got := v.Algorithms(); !slices.Equal(got, []string{HS256, ES256}) {
		t.Errorf("algorithms = %q", got)
	}
	for name, cfg := range map[string]MintConfig{
		"secret given":       {Sub: "17", Key: testSecret},
		"secret file":        {Sub: "17", KeyFile: secretFile},
		"private key file":   {Sub: "17", KeyFile: privFile},
		"private key, ES256": {Sub: "17", Key: pemPrivate(t, ecKey()), Alg: ES256},
	} {
		if _, err := v.Verify(mint(t, cfg)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestKeyRedaction(t *testing.T) {
	k := Key{ID: "a", Secret: testSecret}
	m := MintConfig{Sub: "17", Key: testSecret}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		for _, s := range []string{fmt.Sprintf(verb, k), fmt.Sprintf(verb, m), fmt.Sprintf(verb, VerifierConfig{Keys: []Key{k}}), fmt.Sprintf(verb, &k)} {
			if strings.Contains(s, string(testSecret)) || strings.Contains(s, "116 101 115 116") || strings.Contains(strings.ToLower(s), "746573742d") {
				t.Errorf("%s prints the secret: %s", verb, s)
			}
		}
	}
}

// TestVerifyRefusesInvalidText: a token whose header or claims are not
// valid UTF-8, or carry a \u escape of a lone surrogate, is invalid, even
// when well signed: decoded, the subjects "\xff" and "\xfe" (or "\ud800"
// and "\ud801") were both "\uFFFD", one user.
func TestVerifyRefusesInvalidText(t *testing.T) {
	v := newVerifier(t, VerifierConfig{})
	exp := time.Now().Add(time.Hour).Unix()
	const hs = `{"alg":"HS256","typ":"JWT"}`
	for _, tc := range []struct{ name, header, sub string }{
		{"invalid byte in sub", hs, "\xff"},
		{"lone high surrogate in sub", hs, `\ud800`},
		{"lone low surrogate in sub", hs, `a\udc00`},
		{"invalid byte in the header", `{"alg":"HS256","typ":"JWT\xfe"}`, "17"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(signRaw(t, tc.header, fmt.Sprintf(`{"sub":"%s","exp":%d}`, tc.sub, exp)))
			var te *TokenError
			if !errors.As(err, &te) || te.Disconnect != session.DisconnectInvalidToken {
				t.Fatalf("Verify: %v, want an invalid token", err)
			}
		})
	}
	c, err := v.Verify(signRaw(t, hs, fmt.Sprintf(`{"sub":"é\ud83d\ude00\ufffd","exp":%d}`, exp)))
	if err != nil || c.Subject != "é😀\uFFFD" {
		t.Fatalf("valid text: %+v, %v", c, err)
	}
}

// TestVerifyRefusesLooseClaims: a token whose signature holds is still
// refused when its JSON says something another reader of the same token
// could take otherwise: a date written as a string (RFC 7519 makes it a
// number; the JWT library takes both), or a name given twice.
func TestVerifyRefusesLooseClaims(t *testing.T) {
	v := newVerifier(t, VerifierConfig{})
	now := time.Now()
	exp, past := now.Add(time.Hour).Unix(), now.Add(-time.Minute).Unix()
	const hs = `{"alg":"HS256","typ":"JWT"}`
	for _, tc := range []struct{ name, header, claims, reason string }{
		{"exp as a string", hs, fmt.Sprintf(`{"sub":"17","exp":"%d"}`, exp), "exp is not a number"},
		{"exp as a string under another case", hs, fmt.Sprintf(`{"sub":"17","EXP":"%d"}`, exp), "exp is not a number"},
		{"nbf as a string", hs, fmt.Sprintf(`{"sub":"17","exp":%d,"nbf":"%d"}`, exp, past), "nbf is not a number"},
		{"iat as a string", hs, fmt.Sprintf(`{"sub":"17","exp":%d,"iat":"%d"}`, exp, past), "iat is not a number"},
		{"sub twice", hs, fmt.Sprintf(`{"sub":"17","exp":%d,"sub":"admin"}`, exp), `the name "sub" appears twice`},
		{"channels twice under another case", hs, fmt.Sprintf(`{"sub":"17","exp":%d,"channels":["news"],"Channels":["*"]}`, exp), `the name "Channels" appears twice`},
		{"alg twice in the header", `{"alg":"none","typ":"JWT","alg":"HS256"}`, fmt.Sprintf(`{"sub":"17","exp":%d}`, exp), `the name "alg" appears twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(signRaw(t, tc.header, tc.claims))
			var te *TokenError
			if !errors.As(err, &te) || te.Disconnect != session.DisconnectInvalidToken || te.Reason != tc.reason {
				t.Fatalf("Verify: %#v, want an invalid token: %s", err, tc.reason)
			}
		})
	}
	// Numbers, and a null date the library treats as absent, still verify.
	c, err := v.Verify(signRaw(t, hs, fmt.Sprintf(`{"sub":"17","exp":%d.5,"nbf":null,"iat":%d}`, exp, past)))
	if err != nil || c.Subject != "17" {
		t.Fatalf("dates as numbers: %+v, %v", c, err)
	}
}

// signRaw signs header and claims, JSON text taken as it is, with HS256 and
// testSecret: for tokens no JSON encoder would write.
func signRaw(t *testing.T, header, claims string) string {
	t.Helper()
	si := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	sig, err := jwt.SigningMethodHS256.Sign(si, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return si + "." + base64.RawURLEncoding.EncodeToString(sig)
}
