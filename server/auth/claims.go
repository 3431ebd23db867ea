package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/waterspout/waterspout/session"
)

// Token kinds, from the `kind` claim. A connection token is what a browser
// holds; a publisher token is what a backend presents on /api/*. The two are
// mutually exclusive (RFC 8725 §3.12): a connection token handed to a browser
// can never publish through the backend API, and a publisher token can never
// open a browser connection, even when both are signed with the same key.
const (
	KindConnection = "connection" // the default when `kind` is absent
	KindPublisher  = "publisher"
)

// PersonalPrefix starts a personal channel: `user#<sub>` belongs to the
// holder of a token for <sub> and to nobody else, whatever its namespace
// says about anonymous access.
const PersonalPrefix = "user#"

// Claims is what a verified token grants. It is immutable once returned.
type Claims struct {
	Subject string // `sub`, never empty
	Kind    string // KindConnection or KindPublisher
	// Channels are the patterns the holder may subscribe to (`channels`).
	Channels []string
	// Publish are the patterns the holder may publish to (`publish`).
	Publish   []string
	ExpiresAt time.Time // `exp`, always set
	IssuedAt  time.Time // `iat`, zero when absent
	Issuer    string    // `iss`
	Audience  []string  // `aud`
}

// CanSubscribe reports whether the claims let their holder subscribe to ch:
// a `channels` pattern matches, or ch is the holder's own personal channel.
func (c *Claims) CanSubscribe(ch string) bool {
	if c == nil {
		return false
	}
	own := c.Subject != "" && len(ch) == len(PersonalPrefix)+len(c.Subject) &&
		IsPersonal(ch) && ch[len(PersonalPrefix):] == c.Subject
	return own || matchAny(c.Channels, ch)
}

// CanPublish reports whether a `publish` pattern matches ch. A personal
// channel is not publishable by its owner without such a pattern.
func (c *Claims) CanPublish(ch string) bool {
	return c != nil && matchAny(c.Publish, ch)
}

// PublisherAllowed reports whether publisher claims (from a backend's token
// on /api/*) let their holder publish to ch. Connection claims never do.
func PublisherAllowed(c *Claims, ch string) bool {
	return c != nil && c.Kind == KindPublisher && matchAny(c.Publish, ch)
}

// IsPersonal reports whether ch is a personal channel (`user#…`).
func IsPersonal(ch string) bool { return strings.HasPrefix(ch, PersonalPrefix) }

// A pattern is an exact channel name (`orders:42`) or a prefix followed by
// one trailing `*` (`orders:*`), which matches every channel that starts
// with the prefix and has at least one more byte: `orders:*` matches
// `orders:1` but not `orders:`, `orders` or `ordersX:1`. A bare `*`
// matches every channel (including every personal channel): meant for
// publisher and monitoring tokens. Nothing else is special.

// errPattern is the sentinel behind every invalid-pattern error.
var errPattern = errors.New("invalid channel pattern")

// ValidatePattern checks one pattern.
func ValidatePattern(p string) error {
	prefix, wild := strings.CutSuffix(p, "*")
	if !wild {
		if err := session.ValidateChannel(p); err != nil {
			return fmt.Errorf("%w: %v", errPattern, err)
		}
		return nil
	}
	if prefix == "" {
		return nil
	}
	// The prefix of a wildcard is a channel name one byte short of the
	// longest; a second `*` fails here because `*` is not a channel byte.
	if len(prefix) >= session.MaxChannelLen {
		return fmt.Errorf("%w: prefix longer than %d bytes", errPattern, session.MaxChannelLen-1)
	}
	if err := session.ValidateChannel(prefix); err != nil {
		return fmt.Errorf("%w: %v", errPattern, err)
	}
	return nil
}

// MatchPattern reports whether pattern p matches channel ch. It does not
// validate p: an invalid pattern may match nothing or behave as written.
func MatchPattern(p, ch string) bool {
	if prefix, wild := strings.CutSuffix(p, "*"); wild {
		return len(ch) > len(prefix) && strings.HasPrefix(ch, prefix)
	}
	return p == ch
}

func matchAny(patterns []string, ch string) bool {
	for _, p := range patterns {
		if MatchPattern(p, ch) {
			return true
		}
	}
	return false
}

// patternError names the claim and index of an invalid pattern, never the
// pattern itself (it is part of the token).
type patternError struct {
	claim string
	index int
}

func (e *patternError) Error() string {
	return fmt.Sprintf("invalid channel pattern in %s[%d]", e.claim, e.index)
}

func (e *patternError) Unwrap() error { return errPattern }

func validatePatterns(claim string, ps []string) error {
	for i, p := range ps {
		if ValidatePattern(p) != nil {
			return &patternError{claim, i}
		}
	}
	return nil
}
