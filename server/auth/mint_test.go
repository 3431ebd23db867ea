package auth

import (
	"strings"
	"testing"
	"time"
)

func TestMintRefuses(t *testing.T) {
	rsaPub := pemPublic(t, &rsaKey().PublicKey)
	cases := []struct {
		name string
		cfg  MintConfig
		want string
	}{
		{"no sub", MintConfig{TTL: time.Hour, Key: testSecret}, "sub"},
		{"no TTL", MintConfig{Sub: "17", Key: testSecret}, "TTL"},
		{"no key", MintConfig{Sub: "17", TTL: time.Hour}, "key is required"},
		{"short secret", MintConfig{Sub: "17", TTL: time.Hour, Key: []byte("short")}, "shorter"},
		{"public key", MintConfig{Sub: "17", TTL: time.Hour, Key: rsaPub}, "public key cannot sign"},
		{"alg does not fit", MintConfig{Sub: "17", TTL: time.Hour, Key: testSecret, Alg: RS256}, "does not fit"},
		{"HS384", MintConfig{Sub: "17", TTL: time.Hour, Key: testSecret, Alg: "HS384"}, "does not fit"},
		{"bad pattern", MintConfig{Sub: "17", TTL: time.Hour, Key: testSecret, Channels: []string{"a*b"}}, "channels[0]"},
		{"unknown kind", MintConfig{Sub: "17", TTL: time.Hour, Key: testSecret, Kind: "admin"}, "kind"},
		{"key and file", MintConfig{Sub: "17", TTL: time.Hour, Key: testSecret, KeyFile: "x"}, "not both"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Mint(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestMintRoundTrip checks every algorithm against a verifier holding the
// public half only.
func TestMintRoundTrip(t *testing.T) {
	for name, keys := range map[string]struct{ priv, pub []byte }{
		HS256: {testSecret, nil},
		RS256: {pemPrivate(t, rsaKey()), pemPublic(t, &rsaKey().PublicKey)},
		ES256: {pemPrivate(t, ecKey()), pemPublic(t, &ecKey().PublicKey)},
	} {
		t.Run(name, func(t *testing.T) {
			k := Key{Secret: keys.priv}
			if keys.pub != nil {
				k = Key{PublicKeyPEM: keys.pub}
			}
			v := newVerifier(t, VerifierConfig{Keys: []Key{k}})
			tok := mint(t, MintConfig{Sub: "17", Alg: name, Key: keys.priv, Publish: []string{"a:*"}, Kind: KindPublisher})
			c, err := v.VerifyPublisher(tok)
			if err != nil {
				t.Fatal(err)
			}
			if !PublisherAllowed(c, "a:1") {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
}
