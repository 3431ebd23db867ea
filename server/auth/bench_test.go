package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/testclock"
)

func BenchmarkVerify(b *testing.B) {
	for _, tc := range []struct {
		alg       string
		priv, pub func(testing.TB) []byte
	}{
		{HS256, func(testing.TB) []byte { return testSecret }, nil},
		{RS256, func(t testing.TB) []byte { return pemPrivate(t, rsaKey()) }, func(t testing.TB) []byte { return pemPublic(t, &rsaKey().PublicKey) }},
		{ES256, func(t testing.TB) []byte { return pemPrivate(t, ecKey()) }, func(t testing.TB) []byte { return pemPublic(t, &ecKey().PublicKey) }},
	} {
		b.Run(tc.alg, func(b *testing.B) {
			k := Key{Secret: testSecret}
			if tc.pub != nil {
				k = Key{PublicKeyPEM: tc.pub(b)}
			}
			v := newVerifier(b, VerifierConfig{Keys: []Key{k}})
			tok := mint(b, MintConfig{Sub: "17", Key: tc.priv(b), Channels: []string{"orders:*", "news"}})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkKeyedLimiterAllow(b *testing.B) {
	l := NewKeyedLimiter(10, 1<<30, 1024, nil) // never idle: no churn
	keys := make([]string, 512)
	for i := range keys {
		keys[i] = fmt.Sprint("203.0.113.", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(keys[i%len(keys)])
		i++
	}
}

// TestKeyedLimiterAllocs holds the limiter to its promise of being cheap on
// the hot path: a known key costs no allocation.
func TestKeyedLimiterAllocs(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	l := NewKeyedLimiter(1, 5, 10, clock.Now)
	l.Allow("k")
	if n := testing.AllocsPerRun(100, func() { l.Allow("k") }); n != 0 {
		t.Fatalf("%v allocations per Allow of a known key", n)
	}
}
