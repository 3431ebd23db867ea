package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
)

var (
	rsaKey      = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	otherRSAKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	ecKey       = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
	otherECKey  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
	p384Key     = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P384()) })
)

// RSAKey is a 2048-bit RSA key, the same for the whole test binary.
func RSAKey() *rsa.PrivateKey { return rsaKey() }

// OtherRSAKey is a second 2048-bit RSA key: a wrong key for RSAKey's tokens.
func OtherRSAKey() *rsa.PrivateKey { return otherRSAKey() }

// ECKey is a P-256 ECDSA key (ES256), the same for the whole test binary.
func ECKey() *ecdsa.PrivateKey { return ecKey() }

// OtherECKey is a second P-256 key: a wrong key for ECKey's tokens.
func OtherECKey() *ecdsa.PrivateKey { return otherECKey() }

// P384Key is an ECDSA key on P-384, a curve ES256 does not use.
func P384Key() *ecdsa.PrivateKey { return p384Key() }

// PublicPEM encodes a public key as a PEM "PUBLIC KEY" block (PKIX).
func PublicPEM(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	return encode(tb, "PUBLIC KEY", der, err)
}

// PrivatePEM encodes a private key as a PEM "PRIVATE KEY" block (PKCS #8).
func PrivatePEM(tb testing.TB, priv any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	return encode(tb, "PRIVATE KEY", der, err)
}

// encode wraps der, the result of a marshal that returned err, in a PEM
// block of typ.
func encode(tb testing.TB, typ string, der []byte, err error) []byte {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}
