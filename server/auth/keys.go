package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// The supported algorithms. Each key is bound to exactly one of them.
const (
	HS256 = "HS256" // HMAC-SHA256 with a shared secret
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
	ES256 = "ES256" // ECDSA P-256 with SHA-256
)

var algorithms = []string{HS256, RS256, ES256}

// Key strength floors.
const (
	// MinSecretBytes: RFC 7518 §3.2 requires an HS256 key of at least the
	// hash size.
	MinSecretBytes = 32
	MinRSABits     = 2048
)

// Key is one verification key. Set exactly one of Secret, PublicKeyPEM and
// File. Its String and Format methods never print the key material.
type Key struct {
	// ID is the `kid` that selects this key; optional. A token with a `kid`
	// is checked against that key only; a token without one against every
	// key of its algorithm.
	ID string
	// Alg, when set, must be the algorithm the material implies (a secret
	// implies HS256, an RSA public key RS256, a P-256 public key ES256).
	Alg string
	// Secret is an HMAC secret (HS256), at least MinSecretBytes long.
	Secret []byte
	// PublicKeyPEM is an RSA or ECDSA P-256 public key ("PUBLIC KEY",
	// "RSA PUBLIC KEY" or "CERTIFICATE" block).
	PublicKeyPEM []byte
	// File holds either: PEM content is read as a public key, anything else
	// as an HMAC secret (trailing CR and LF bytes removed, since editors and
	// `echo` add them).
	File string
}

// String describes the key without its material.
func (k Key) String() string {
	src := "secret"
	switch {
	case k.PublicKeyPEM != nil:
		src = "public key"
	case k.File != "":
		src = "file " + k.File
	}
	return fmt.Sprintf("auth.Key{ID:%q Alg:%q %s, redacted}", k.ID, k.Alg, src)
}

// GoString keeps %#v from printing the material.
func (k Key) GoString() string { return k.String() }

// Format keeps every verb (%d and %x included) from printing the material.
func (k Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps slog from printing the material.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// key is a loaded verification key, bound to its algorithm.
type key struct {
	id       string
	alg      string
	material any // []byte for HS256, *rsa.PublicKey, *ecdsa.PublicKey
}

func loadVerificationKey(kc Key) (*key, error) {
	set := 0
	for _, ok := range []bool{kc.Secret != nil, kc.PublicKeyPEM != nil, kc.File != ""} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return nil, errors.New("set exactly one of Secret, PublicKeyPEM and File")
	}
	var (
		alg      string
		material any
		err      error
	)
	switch {
	case kc.Secret != nil:
		alg, material, err = hmacSecret(kc.Secret)
	case kc.PublicKeyPEM != nil:
		alg, material, err = publicKey(kc.PublicKeyPEM)
	default:
		var b []byte
		if b, err = os.ReadFile(kc.File); err != nil {
			return nil, fmt.Errorf("read key file: %w", err)
		}
		if looksPEM(b) {
			alg, material, err = publicKey(b)
		} else {
			alg, material, err = hmacSecret(bytes.TrimRight(b, "\r\n"))
		}
	}
	if err != nil {
		return nil, err
	}
	if kc.Alg != "" && kc.Alg != alg {
		return nil, fmt.Errorf("alg %q does not fit the key, which is for %s", kc.Alg, alg)
	}
	return &key{id: kc.ID, alg: alg, material: material}, nil
}

func looksPEM(b []byte) bool { return bytes.Contains(b, []byte("-----BEGIN ")) }

// hmacSecret refuses PEM text as a secret: configuring a public key as an
// HMAC secret is exactly the mistake that lets anyone who has the public key
// sign HS256 tokens.
func hmacSecret(b []byte) (string, any, error) {
	if looksPEM(b) {
		return "", nil, errors.New("the HMAC secret is PEM text; configure a public key as PublicKeyPEM")
	}
	if len(b) < MinSecretBytes {
		return "", nil, fmt.Errorf("HMAC secret shorter than %d bytes", MinSecretBytes)
	}
	return HS256, bytes.Clone(b), nil
}

// pemBlock decodes the first PEM block of b, a what.
func pemBlock(b []byte, what string) (*pem.Block, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block in " + what)
	}
	return block, nil
}

func publicKey(b []byte) (string, any, error) {
	block, err := pemBlock(b, "public key")
	if err != nil {
		return "", nil, err
	}
	var pub any
	switch {
	case block.Type == "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case block.Type == "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case block.Type == "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return "", nil, errors.New("a private key where a public key is expected: the server needs only the public key")
	default:
		return "", nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return "", nil, fmt.Errorf("parse public key: %w", err)
	}
	return keyAlg(pub)
}

// keyAlg binds a public key to its algorithm, enforcing the strength floors.
func keyAlg(pub any) (string, any, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return "", nil, fmt.Errorf("RSA key of %d bits; at least %d needed", k.N.BitLen(), MinRSABits)
		}
		return RS256, k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", nil, errors.New("ECDSA key is not on P-256, which ES256 needs")
		}
		return ES256, k, nil
	}
	return "", nil, fmt.Errorf("unsupported public key type %T", pub)
}

// privateKey parses a signing key for Mint.
func privateKey(b []byte) (string, any, error) {
	block, err := pemBlock(b, "private key")
	if err != nil {
		return "", nil, err
	}
	var priv any
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
		return "", nil, errors.New("a public key cannot sign; Mint needs the private key")
	default:
		return "", nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return "", nil, fmt.Errorf("parse private key: %w", err)
	}
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		alg, _, err := keyAlg(&k.PublicKey)
		return alg, k, err
	case *ecdsa.PrivateKey:
		alg, _, err := keyAlg(&k.PublicKey)
		return alg, k, err
	}
	return "", nil, fmt.Errorf("unsupported private key type %T", priv)
}
