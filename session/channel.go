package session

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxChannelLen is the longest channel name accepted, in bytes.
const MaxChannelLen = 255

// MaxEpochLen is the longest epoch accepted, in bytes.
const MaxEpochLen = 64

// ValidateChannel checks a channel name: 1..255 bytes of [A-Za-z0-9_\-:#.@=].
// The part before the first ':' selects the namespace.
func ValidateChannel(ch string) error {
	if ch == "" {
		return badRequest("empty channel name")
	}
	if len(ch) > MaxChannelLen {
		return badRequest("channel name longer than %d bytes", MaxChannelLen)
	}
	for i := 0; i < len(ch); i++ {
		if !channelByte(ch[i]) {
			return badChannelChar(ch, i)
		}
	}
	return nil
}

// badChannelChar explains the invalid byte at ch[i] as a person sees it: the
// character (not its first byte) and its position in characters.
func badChannelChar(ch string, i int) error {
	if !utf8.ValidString(ch) {
		return badRequest("channel name is not valid UTF-8")
	}
	r, _ := utf8.DecodeRuneInString(ch[i:])
	return badRequest("channel name has invalid character %q at character %d (allowed: letters A-Z a-z, digits, and _ - : # . @ =)",
		r, utf8.RuneCountInString(ch[:i])+1)
}

func channelByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("_-:#.@=", c) >= 0
}

// ValidEpoch reports whether e is 1..64 bytes of [A-Za-z0-9_-], the form
// positions and cursors accept.
func ValidEpoch(e string) bool {
	if e == "" || len(e) > MaxEpochLen {
		return false
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// NamespaceOf returns the namespace of a channel: the text before the first
// ':', or "" for the default namespace.
func NamespaceOf(ch string) string {
	if i := strings.IndexByte(ch, ':'); i > 0 {
		return ch[:i]
	}
	return ""
}

func validatePosition(p *Position) error {
	if p == nil {
		return nil
	}
	if !ValidEpoch(p.Epoch) {
		return badRequest("invalid epoch in position")
	}
	if p.Offset >= 1<<53 {
		return badRequest("offset out of range")
	}
	return nil
}

// channelError adds the channel to an error's reason while keeping its code.
func channelError(ch string, err error) error {
	e := AsError(err)
	return &Error{e.Code, fmt.Sprintf("%s: %s", ch, e.Reason)}
}
