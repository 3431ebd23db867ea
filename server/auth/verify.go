package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/waterspout/waterspout/session"
)

// Defaults of VerifierConfig.
const (
	DefaultLeeway        = 5 * time.Second
	DefaultMaxTokenBytes = 8 << 10
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Keys are the verification keys; at least one. The algorithms they are
	// bound to are the only ones accepted.
	Keys []Key
	// Issuer, when set, must equal the token's `iss`.
	Issuer string
	// Audience, when set, must be one of the token's `aud` values.
	Audience string
	// Leeway absorbs clock skew between the token's issuer and this server
	// for `exp`, `nbf` and `iat`. Zero means DefaultLeeway; negative, none.
	Leeway time.Duration
	// MaxTokenBytes refuses longer tokens before any decoding. Zero means
	// DefaultMaxTokenBytes.
	MaxTokenBytes int
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// Verifier checks signed tokens. It is safe for concurrent use.
type Verifier struct {
	parser   *jwt.Parser
	byID     map[string]*key
	byAlg    map[string][]jwt.VerificationKey
	leeway   time.Duration
	maxBytes int
	now      func() time.Time
}

// NewVerifier loads the configured keys and returns a Verifier that accepts
// exactly their algorithms.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("auth: verifier needs at least one key")
	}
	v := &Verifier{
		byID: map[string]*key{}, byAlg: map[string][]jwt.VerificationKey{},
		leeway: cfg.Leeway, maxBytes: cfg.MaxTokenBytes, now: cfg.Now,
	}
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	if v.maxBytes <= 0 {
		v.maxBytes = DefaultMaxTokenBytes
	}
	if v.now == nil {
		v.now = time.Now
	}
	var algs []string
	for i, kc := range cfg.Keys {
		k, err := loadVerificationKey(kc)
		if err != nil {
			return nil, fmt.Errorf("auth: key %d: %w", i, err)
		}
		if k.id != "" {
			if v.byID[k.id] != nil {
				return nil, fmt.Errorf("auth: key %d: key id %q used twice", i, k.id)
			}
			v.byID[k.id] = k
		}
		if v.byAlg[k.alg] == nil {
			algs = append(algs, k.alg)
		}
		v.byAlg[k.alg] = append(v.byAlg[k.alg], k.material)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs), // never "none": no key is ever bound to it
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(v.now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Algorithms returns the accepted algorithms, for logs and docs.
func (v *Verifier) Algorithms() []string {
	out := make([]string, 0, len(v.byAlg))
	for _, alg := range algorithms {
		if v.byAlg[alg] != nil {
			out = append(out, alg)
		}
	}
	return out
}

// tokenClaims is the token payload as decoded.
type tokenClaims struct {
	jwt.RegisteredClaims
	Channels []string `json:"channels,omitempty"`
	Publish  []string `json:"publish,omitempty"`
	Kind     string   `json:"kind,omitempty"`
}

var (
	errNoSubject   = errors.New("missing sub")
	errUnknownKind = errors.New("unknown kind")
)

// Validate runs with the registered-claim checks, once the signature holds,
// so that every reason a token is refused is known together (see classify).
func (c *tokenClaims) Validate() error {
	if c.Subject == "" {
		return errNoSubject
	}
	switch c.Kind {
	case "", KindConnection, KindPublisher:
	default:
		return errUnknownKind
	}
	if err := validatePatterns("channels", c.Channels); err != nil {
		return err
	}
	return validatePatterns("publish", c.Publish)
}

var _ jwt.ClaimsValidator = (*tokenClaims)(nil)

// Key selection errors (returned by the key function).
var (
	errKidType   = errors.New("kid is not a string")
	errUnknownID = errors.New("unknown kid")
	errKidAlg    = errors.New("kid names a key of another algorithm")
	errNoKey     = errors.New("no key for the algorithm")
	errCrit      = errors.New("critical header extensions are not supported")
)

// keyFor picks the verification key(s) for a token whose algorithm is
// already on the allow-list. A key is only ever offered to its own
// algorithm: an HS256 token is checked against HMAC secrets only, never
// against the bytes of an RSA or ECDSA public key.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	alg := t.Method.Alg()
	if raw, ok := t.Header["kid"]; ok {
		id, ok := raw.(string)
		if !ok {
			return nil, errKidType
		}
		k := v.byID[id]
		switch {
		case k == nil:
			return nil, errUnknownID
		case k.alg != alg:
			return nil, errKidAlg
		}
		return k.material, nil
	}
	keys := v.byAlg[alg]
	switch len(keys) {
	case 0:
		return nil, errNoKey
	case 1:
		return keys[0], nil
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}

// Verify checks a token and returns what it grants. Errors are *TokenError.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, invalid("empty token")
	}
	if len(token) > v.maxBytes {
		return nil, invalid(fmt.Sprintf("token longer than %d bytes", v.maxBytes))
	}
	var tc tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &tc, v.keyFor); err != nil {
		return nil, classify(err)
	}
	if reason := tokenTextFault(token); reason != "" {
		return nil, invalid(reason)
	}
	c := &Claims{
		Subject: tc.Subject, Kind: tc.Kind, Channels: tc.Channels, Publish: tc.Publish,
		ExpiresAt: tc.ExpiresAt.Time, Issuer: tc.Issuer, Audience: tc.Audience,
	}
	if c.Kind == "" {
		c.Kind = KindConnection
	}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.Time
	}
	return c, nil
}

// VerifyConnection verifies a browser's connection token.
func (v *Verifier) VerifyConnection(token string) (*Claims, error) {
	return v.verifyKind(token, KindConnection)
}

// VerifyPublisher verifies a backend's publisher token (for /api/*).
func (v *Verifier) VerifyPublisher(token string) (*Claims, error) {
	return v.verifyKind(token, KindPublisher)
}

// verifyKind verifies token and refuses it unless it is of kind: a
// connection token must not publish, nor a publisher token connect.
func (v *Verifier) verifyKind(token, kind string) (*Claims, error) {
	c, err := v.Verify(token)
	if err != nil {
		return nil, err
	}
	if c.Kind != kind {
		return nil, invalid("not a " + kind + " token")
	}
	return c, nil
}

// deadline is when claims stop verifying: their expiry plus the leeway.
func (v *Verifier) deadline(c *Claims) time.Time { return c.ExpiresAt.Add(v.leeway) }

// classify maps a parse error to a TokenError with a fixed reason. Only a
// token whose one fault is its age is "expired": the signature is checked
// before the claims, so it is genuine, and a fresh token from the same
// issuer will do. Anything else wrong with it makes it invalid.
func classify(err error) *TokenError {
	var pe *patternError
	if errors.As(err, &pe) {
		return invalid(pe.Error())
	}
	for _, c := range []struct {
		err    error
		reason string
	}{
		{jwt.ErrTokenMalformed, "malformed token"},
		{errCrit, "critical header extensions are not supported"},
		{errKidType, "kid is not a string"},
		{errUnknownID, "unknown kid"},
		{errKidAlg, "kid names a key of another algorithm"},
		{errNoKey, "algorithm not allowed"},
		// The allow-list check reports ErrTokenSignatureInvalid too; the
		// reason covers both rather than guess.
		{jwt.ErrTokenSignatureInvalid, "signature invalid or algorithm not allowed"},
		{jwt.ErrTokenUnverifiable, "algorithm not supported"},
		{jwt.ErrTokenRequiredClaimMissing, "missing required claim"},
		{jwt.ErrTokenNotValidYet, "not valid yet"},
		{jwt.ErrTokenUsedBeforeIssued, "issued in the future"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
		{errNoSubject, "missing sub"},
		{errUnknownKind, "unknown kind"},
	} {
		if errors.Is(err, c.err) {
			return invalid(c.reason)
		}
	}
	if errors.Is(err, jwt.ErrTokenExpired) {
		return &TokenError{Disconnect: session.DisconnectTokenExpired, Reason: "expired"}
	}
	return invalid("invalid claims")
}

// tokenTextFault says what is wrong with a token's header and claims as
// JSON text from outside, or "" when nothing is. It is called once the
// token has been parsed and its signature checked, so its segments decode
// and only the issuer can have written what it finds.
//
//   - Text that is not valid UTF-8, or escapes a lone surrogate
//     (session.ValidJSONText): encoding/json turns both into U+FFFD, so
//     subjects "\xff" and "\xfe" (or "\ud800" and "\ud801") were the same
//     user: an `auth` with one was taken as a refresh of the other's
//     connection, and both shared presence entries and disconnect orders
//     (found 2026-12-07 by the attack pass).
//   - A name given twice (session.DuplicateName): the JWT library keeps
//     the last `sub` or `alg`, where a gateway reading the token may keep
//     the first, as with every other body.
//   - A date that is not a JSON number: RFC 7519 makes `exp`, `nbf` and
//     `iat` NumericDates, but the library also takes a string that holds
//     a number, so `"exp":"1767225600"` would be honoured here and refused
//     by a stricter peer reading the same token.
func tokenTextFault(token string) string {
	head, rest, _ := strings.Cut(token, ".")
	claims, _, _ := strings.Cut(rest, ".")
	var b []byte
	for _, seg := range []string{head, claims} {
		var err error
		b, err = base64.RawURLEncoding.Strict().DecodeString(seg)
		if err != nil || !session.ValidJSONText(b) {
			return "header or claims not valid UTF-8 text"
		}
		if name, twice := session.DuplicateName(b); twice {
			return fmt.Sprintf("the name %q appears twice", name)
		}
	}
	// b holds the claims now; decoded with encoding/json's matching of names
	// to fields, the dates are read as the JWT library reads them.
	var dates struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if json.Unmarshal(b, &dates) != nil {
		return "malformed token"
	}
	for _, d := range []struct {
		name string
		raw  json.RawMessage
	}{{"exp", dates.Exp}, {"nbf", dates.Nbf}, {"iat", dates.Iat}} {
		if len(d.raw) > 0 && string(d.raw) != "null" && d.raw[0] != '-' && (d.raw[0] < '0' || d.raw[0] > '9') {
			return d.name + " is not a number"
		}
	}
	return ""
}
