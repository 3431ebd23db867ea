package auth

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintConfig describes a token to sign (`waterspout token`, tests, backends
// written in Go). Its String and Format methods never print Key.
type MintConfig struct {
	Sub      string        // required
	Channels []string      // subscribe patterns
	Publish  []string      // publish patterns
	TTL      time.Duration // required: every token expires
	// Alg is HS256, RS256 or ES256; empty means the one Key implies.
	Alg string
	// Key is an HMAC secret (HS256) or a private key PEM (RS256: PKCS#1 or
	// PKCS#8; ES256: SEC 1 or PKCS#8, P-256), used as given. PEM text is
	// never used as an HMAC secret.
	Key []byte
	// KeyFile, instead of Key, is read like Key.File of a verification key
	// (a secret loses its trailing CR and LF bytes), so that the same file
	// serves both sides.
	KeyFile  string
	KeyID    string   // `kid`, when the verifier has several keys
	Issuer   string   // `iss`
	Audience []string // `aud`
	Kind     string   // "" (a connection token) or KindPublisher
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// String describes the configuration without the key.
func (c MintConfig) String() string {
	return fmt.Sprintf("auth.MintConfig{Sub:%q Alg:%q TTL:%v key redacted}", c.Sub, c.Alg, c.TTL)
}

// GoString keeps %#v from printing the key.
func (c MintConfig) GoString() string { return c.String() }

// Format keeps every verb from printing the key.
func (c MintConfig) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue keeps slog from printing the key.
func (c MintConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Mint signs a token that a Verifier holding the matching key accepts.
func Mint(cfg MintConfig) (string, error) {
	if cfg.Sub == "" {
		return "", errors.New("auth: mint: sub is required")
	}
	if cfg.TTL <= 0 {
		return "", errors.New("auth: mint: TTL must be positive")
	}
	switch cfg.Kind {
	case "", KindConnection, KindPublisher:
	default:
		return "", fmt.Errorf("auth: mint: unknown kind %q", cfg.Kind)
	}
	for _, ps := range []struct {
		claim string
		list  []string
	}{{"channels", cfg.Channels}, {"publish", cfg.Publish}} {
		for i, p := range ps.list {
			if err := ValidatePattern(p); err != nil {
				return "", fmt.Errorf("auth: mint: %s[%d]: %w", ps.claim, i, err)
			}
		}
	}
	alg, signer, err := signingKey(cfg.Key, cfg.KeyFile)
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	if cfg.Alg != "" && cfg.Alg != alg {
		return "", fmt.Errorf("auth: mint: alg %q does not fit the key, which is for %s", cfg.Alg, alg)
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	t := now()
	kind := cfg.Kind
	if kind == KindConnection {
		kind = "" // the default; keep tokens short
	}
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   cfg.Sub,
			Issuer:    cfg.Issuer,
			Audience:  cfg.Audience,
			IssuedAt:  jwt.NewNumericDate(t),
			ExpiresAt: jwt.NewNumericDate(t.Add(cfg.TTL)),
		},
		Channels: cfg.Channels, Publish: cfg.Publish, Kind: kind,
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	if cfg.KeyID != "" {
		tok.Header["kid"] = cfg.KeyID
	}
	s, err := tok.SignedString(signer)
	if err != nil {
		return "", fmt.Errorf("auth: mint: sign: %w", err)
	}
	return s, nil
}

func signingKey(b []byte, file string) (string, any, error) {
	switch {
	case len(b) > 0 && file != "":
		return "", nil, errors.New("set Key or KeyFile, not both")
	case file != "":
		var err error
		if b, err = os.ReadFile(file); err != nil {
			return "", nil, fmt.Errorf("read key file: %w", err)
		}
		if !looksPEM(b) {
			b = bytes.TrimRight(b, "\r\n")
		}
	case len(b) == 0:
		return "", nil, errors.New("a key is required")
	}
	if looksPEM(b) {
		return privateKey(b)
	}
	return hmacSecret(b)
}
