package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/waterspout/waterspout/server/auth"
)

// TokensConfig configures the signed tokens (JWT) browsers connect with and
// backends may publish with. Without any key the server uses no tokens: a
// request that carries one is refused, and only anonymous namespaces can be
// subscribed to (personal `user#…` channels never can).
type TokensConfig struct {
	// Keys verify tokens. The algorithms they imply (HS256 for a secret,
	// RS256 or ES256 for a public key) are the only ones accepted.
	Keys []TokenKey `json:"keys"`
	// HMACSecretFile names a file holding an HS256 secret, used beside Keys
	// (--token-hmac-secret-file). Trailing CR and LF bytes are ignored.
	HMACSecretFile string `json:"hmacSecretFile"`
	// HMACSecret is an HS256 secret from the environment only
	// (WATERSPOUT_TOKEN_HMAC_SECRET), used beside Keys.
	HMACSecret string `json:"-"`
	// Issuer, when set, must equal every token's `iss`.
	Issuer string `json:"issuer"`
	// Audience, when set, must be one of every token's `aud`.
	Audience string `json:"audience"`
	// Leeway absorbs clock skew for `exp`, `nbf` and `iat`: a token is
	// accepted until Leeway after its expiry. Zero means the default
	// (auth.DefaultLeeway, 5 s).
	Leeway time.Duration `json:"leeway"`
}

// TokenKey is one verification key of the config file. Set exactly one of
// Secret, SecretFile and PublicKeyFile.
type TokenKey struct {
	// ID is the `kid` that selects this key; optional (see auth.Key).
	ID string `json:"id"`
	// Alg, when set, must be the algorithm the key implies.
	Alg string `json:"alg"`
	// Secret is an HS256 secret of at least 32 bytes.
	Secret string `json:"secret"`
	// SecretFile holds an HS256 secret (trailing CR and LF bytes ignored).
	SecretFile string `json:"secretFile"`
	// PublicKeyFile holds an RSA (RS256) or P-256 (ES256) public key in PEM.
	PublicKeyFile string `json:"publicKeyFile"`
}

// maxLeeway keeps a typo from turning expiry off.
const maxLeeway = 5 * time.Minute

// configured reports whether any key is set.
func (t *TokensConfig) configured() bool {
	return len(t.Keys) > 0 || t.HMACSecretFile != "" || t.HMACSecret != ""
}

// validate checks the settings and loads every key, so that a missing file
// or a weak secret stops the server before it starts.
func (t *TokensConfig) validate() error {
	if t.Leeway < 0 || t.Leeway > maxLeeway {
		return fmt.Errorf("token leeway %v is outside 0s..%v", t.Leeway, maxLeeway)
	}
	_, err := t.verifier()
	return err
}

// authKeys turns the configuration into verification keys. Files are read
// here, by kind: a secret file is always a secret (auth refuses PEM text as
// one) and a public key file always a public key, so that a file given in
// the wrong place is an error rather than a key of another algorithm.
func (t *TokensConfig) authKeys() ([]auth.Key, error) {
	var keys []auth.Key
	for i, k := range t.Keys {
		set := 0
		for _, v := range []string{k.Secret, k.SecretFile, k.PublicKeyFile} {
			if v != "" {
				set++
			}
		}
		if set != 1 {
			return nil, fmt.Errorf("tokens.keys[%d]: set exactly one of secret, secretFile and publicKeyFile", i)
		}
		ak := auth.Key{ID: k.ID, Alg: k.Alg}
		switch {
		case k.Secret != "":
			ak.Secret = []byte(k.Secret)
		case k.SecretFile != "":
			b, err := readSecretFile(k.SecretFile)
			if err != nil {
				return nil, fmt.Errorf("tokens.keys[%d]: %w", i, err)
			}
			ak.Secret = b
		default:
			b, err := os.ReadFile(k.PublicKeyFile)
			if err != nil {
				return nil, fmt.Errorf("tokens.keys[%d]: public key file: %w", i, err)
			}
			ak.PublicKeyPEM = b
		}
		keys = append(keys, ak)
	}
	if t.HMACSecretFile != "" {
		b, err := readSecretFile(t.HMACSecretFile)
		if err != nil {
			return nil, fmt.Errorf("token HMAC secret: %w", err)
		}
		keys = append(keys, auth.Key{Alg: auth.HS256, Secret: b})
	}
	if t.HMACSecret != "" {
		keys = append(keys, auth.Key{Alg: auth.HS256, Secret: []byte(t.HMACSecret)})
	}
	return keys, nil
}

func readSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

// verifier returns the token verifier, or nil when no key is configured.
func (t *TokensConfig) verifier() (*auth.Verifier, error) {
	if !t.configured() {
		return nil, nil
	}
	keys, err := t.authKeys()
	if err != nil {
		return nil, err
	}
	// A zero leeway is auth's default, as in Validate.
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Issuer: t.Issuer, Audience: t.Audience, Leeway: t.Leeway})
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return v, nil
}

// ErrNoSigningSecret is returned by MintConfig when the configuration holds
// no HMAC secret to sign with (public keys cannot sign).
var ErrNoSigningSecret = errors.New("no HMAC secret configured to sign with")

// MintConfig returns what `waterspout token` signs with by default: the
// first HS256 secret of the configuration (tokens.keys in order, then the
// secret file, then the environment's secret) with its key id, and the
// configured issuer and audience, so that a minted token verifies on a
// server with the same configuration. It returns ErrNoSigningSecret when
// there is no secret.
func (c *Config) MintConfig() (auth.MintConfig, error) {
	t := &c.Tokens
	mc := auth.MintConfig{Issuer: t.Issuer}
	if t.Audience != "" {
		mc.Audience = []string{t.Audience}
	}
	keys, err := t.authKeys()
	if err != nil {
		return mc, err
	}
	for _, k := range keys {
		if k.Secret != nil {
			mc.Key, mc.KeyID = k.Secret, k.ID
			return mc, nil
		}
	}
	return mc, ErrNoSigningSecret
}

// tokensJSON writes the leeway as a duration string.
type tokensJSON struct {
	*tokensPlain
	Leeway duration `json:"leeway"`
}

type tokensPlain TokensConfig

// MarshalJSON writes the config file form. HMACSecret is never written.
func (t TokensConfig) MarshalJSON() ([]byte, error) {
	return json.Marshal(tokensJSON{(*tokensPlain)(&t), duration(t.Leeway)})
}

// UnmarshalJSON reads the config file form over t, refusing unknown fields.
func (t *TokensConfig) UnmarshalJSON(b []byte) error {
	aux := tokensJSON{(*tokensPlain)(t), duration(t.Leeway)}
	if err := decodeSection("tokens", b, &aux); err != nil {
		return err
	}
	t.Leeway = time.Duration(aux.Leeway)
	return nil
}
