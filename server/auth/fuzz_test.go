package auth

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/waterspout/waterspout/session"
)

// FuzzVerify feeds arbitrary strings to a verifier holding an HMAC secret
// and an RSA key: it never panics, refuses with one of the two token codes
// without echoing the token, and accepts only tokens whose signature is
// genuine and whose claims are complete.
func FuzzVerify(f *testing.F) {
	rsaPub := &rsaKey().PublicKey
	v, err := NewVerifier(VerifierConfig{Keys: []Key{{Secret: testSecret}, {PublicKeyPEM: pemPublic(f, rsaPub)}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mint(f, MintConfig{Sub: "17", Channels: []string{"orders:*", "news"}, Publish: []string{"chat:1"}}))
	f.Add(mint(f, MintConfig{Sub: "17", Key: pemPrivate(f, rsaKey())}))
	f.Add(sign(f, jwt.SigningMethodHS256, pemPublic(f, rsaPub), claimsFor("17", time.Hour), nil))
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok)
		if err != nil {
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("err %T is not a *TokenError", err)
			}
			if te.Disconnect != session.DisconnectInvalidToken && te.Disconnect != session.DisconnectTokenExpired {
				t.Fatalf("disconnect %v", te.Disconnect)
			}
			if len(tok) >= 8 && strings.Contains(err.Error(), tok) {
				t.Fatalf("error %q echoes the token", err)
			}
			return
		}
		parts := strings.Split(tok, ".")
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatalf("verified a signature that is not base64url: %v", err)
		}
		input := []byte(parts[0] + "." + parts[1])
		mac := hmac.New(sha256.New, testSecret)
		mac.Write(input)
		digest := sha256.Sum256(input)
		if !hmac.Equal(sig, mac.Sum(nil)) && rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, digest[:], sig) != nil {
			t.Fatal("verified a token without a valid signature")
		}
		if c.Subject == "" || c.ExpiresAt.IsZero() || (c.Kind != KindConnection && c.Kind != KindPublisher) {
			t.Fatalf("verified incomplete claims %+v", c)
		}
		for _, p := range slices.Concat(c.Channels, c.Publish) {
			if ValidatePattern(p) != nil {
				t.Fatalf("verified an invalid pattern %q", p)
			}
		}
	})
}

// FuzzPattern checks pattern validation and matching against their
// definition: exact, or a prefix and one trailing `*` that needs at least
// one more byte.
func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"orders:*", "orders:1"}, {"orders:*", "orders"}, {"orders:*", "ordersX:1"}, {"*", "x"},
		{"news", "news"}, {"a*b", "axb"}, {"**", "x"}, {"user#17", "user#170"}, {"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, p, ch string) {
		valid := ValidatePattern(p) == nil
		got := MatchPattern(p, ch)
		if !valid {
			return
		}
		if strings.Count(p, "*") > 1 || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
			t.Fatalf("pattern %q with an inner star is valid", p)
		}
		prefix, wild := strings.CutSuffix(p, "*")
		want := p == ch
		if wild {
			want = strings.HasPrefix(ch, prefix) && len(ch) > len(prefix)
		}
		if got != want {
			t.Fatalf("MatchPattern(%q, %q) = %v", p, ch, got)
		}
		c := &Claims{Subject: ch, Channels: []string{p}, Publish: []string{p}}
		if c.CanPublish(ch) != got || c.CanSubscribe(ch) != got {
			t.Fatalf("claims disagree with MatchPattern(%q, %q)", p, ch)
		}
	})
}

// FuzzRedactURL checks that no value of a secret parameter that net/url
// would read survives redaction, and that other parameters are unchanged.
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{
		"/connect/sse?channel=news&token=abc.def.ghi", "/connect/ws?%74oken=x", "/p?a=1;token=x&b=%zz",
		"https://u:p@h/p?access_token=x#frag", "/p?token", "/p?&&token=&", "/p?Token=a+b",
		"/api/history?api_key=k&apikey=k2&client_secret=s&password=p",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		out := RedactURL(u)
		u2, err := url.Parse(out)
		if err != nil {
			return
		}
		before, after := u.Query(), u2.Query()
		for k, vs := range after {
			if SecretParam(k) {
				for _, v := range vs {
					if v != Redacted && v != "" {
						t.Fatalf("%q redacted to %q keeps %s=%q", raw, out, k, v)
					}
				}
			} else if !slices.Equal(vs, before[k]) {
				t.Fatalf("%q redacted to %q changed %s", raw, out, k)
			}
		}
	})
}
