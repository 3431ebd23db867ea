package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// APIKeys is the set of keys backends present on /api/* as
// `Authorization: Bearer <key>`. It keeps only SHA-256 digests, and its
// String, Format and LogValue methods say how many keys there are and
// nothing else. It is immutable and safe for concurrent use.
type APIKeys struct {
	digests [][sha256.Size]byte
}

// MinAPIKeyLen is the shortest API key accepted, in bytes. A key is the
// whole secret of a backend, and /api/* answers anyone who can reach it:
// 16 random characters are beyond guessing even without the per-address
// limit on failed credentials (server: credFailBurst).
const MinAPIKeyLen = 16

// CheckAPIKey refuses a key that is too short to be a secret or could not
// travel intact in an Authorization header: anything but printable ASCII
// (0x21–0x7e). Its errors never contain the key.
func CheckAPIKey(key string) error {
	if i := strings.IndexFunc(key, func(r rune) bool { return r <= ' ' || r >= 0x7f }); i >= 0 {
		return errors.New("contains white space, control or non-ASCII characters: an API key travels in an Authorization header, so use printable ASCII")
	}
	if len(key) < MinAPIKeyLen {
		return fmt.Errorf("is %d characters long, under %d: use a long random key (for example: openssl rand -hex 16)", len(key), MinAPIKeyLen)
	}
	return nil
}

// NewAPIKeys returns the set of keys, each checked by CheckAPIKey.
func NewAPIKeys(keys ...string) (*APIKeys, error) {
	k := &APIKeys{digests: make([][sha256.Size]byte, 0, len(keys))}
	for i, key := range keys {
		if err := CheckAPIKey(key); err != nil {
			return nil, fmt.Errorf("auth: API key %d %w", i, err)
		}
		k.digests = append(k.digests, sha256.Sum256([]byte(key)))
	}
	if len(k.digests) == 0 {
		return nil, errors.New("auth: no API keys")
	}
	return k, nil
}

// Len returns how many keys the set holds.
func (k *APIKeys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.digests)
}

// Check reports whether an Authorization header value carries one of the
// keys as a Bearer credential.
func (k *APIKeys) Check(header string) bool { return k.CheckKey(BearerToken(header)) }

// CheckKey reports whether key is one of the keys. Digests of equal length
// are compared, every one of them, in constant time: the time taken tells
// neither the key's length, nor how much of it matched, nor which key did.
func (k *APIKeys) CheckKey(key string) bool { return k.IndexKey(key) >= 0 }

// Index returns the position (in NewAPIKeys's arguments) of the key an
// Authorization header value carries as a Bearer credential, or -1. The
// position names a key in logs and rate limits without holding the key.
func (k *APIKeys) Index(header string) int { return k.IndexKey(BearerToken(header)) }

// IndexKey is Index for a bare key. Like CheckKey it compares every digest
// in constant time and selects the match without branching on it.
func (k *APIKeys) IndexKey(key string) int {
	if k == nil || key == "" {
		return -1
	}
	got := sha256.Sum256([]byte(key))
	found := -1
	for i := range k.digests {
		eq := subtle.ConstantTimeCompare(got[:], k.digests[i][:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	return found
}

// String reports the number of keys, never the keys or their digests.
// The printing methods have value receivers so that a copy is redacted too.
func (k APIKeys) String() string {
	return fmt.Sprintf("auth.APIKeys{%d keys, redacted}", len(k.digests))
}

// GoString keeps %#v from printing digests.
func (k APIKeys) GoString() string { return k.String() }

// Format keeps every verb from printing digests.
func (k APIKeys) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps slog from printing digests.
func (k APIKeys) LogValue() slog.Value { return slog.StringValue(k.String()) }
