package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// JSONEnded reports whether nothing but white space follows the value dec
// has just decoded: the check for trailing data every decoder of outside
// JSON makes. Not dec.More, which reports false before a stray ']' or
// '}', so that `{"channel":"c","data":1}}` would be taken whole.
func JSONEnded(dec *json.Decoder) bool {
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

// ValidJSONText reports whether b, JSON text from outside, is valid UTF-8
// and has no \u escape of a lone UTF-16 surrogate. encoding/json turns
// both into U+FFFD when it decodes a string, silently: two different
// invalid idempotency keys would then become the same key, and the second
// publication would be answered as a duplicate and never delivered. So
// every decoder of outside JSON checks this first and refuses what fails.
func ValidJSONText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped byte; "\\" is skipped whole, so "\\u" is not an escape
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		r, ok := hex4(b, i+1)
		if !ok {
			continue // not an escape encoding/json accepts: it refuses the text itself
		}
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF: // a low surrogate with no high one before it
			return false
		case r >= 0xD800 && r <= 0xDBFF: // a high surrogate needs a low one next
			if i+2 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
				return false
			}
			lo, ok := hex4(b, i+3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 6
		}
	}
	return true
}

// hex4 parses the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// DuplicateName returns a name that the JSON object b holds twice at its
// top level, as encoding/json matches names to fields: after unescaping,
// and without regard to case ("channel", "Channel" and "\u0063hannel" are
// one name). encoding/json keeps the last of them, where another parser (a
// gateway, a WAF, a log pipeline) may keep the first: the same request
// would say two things. Every decoder of an outside command or body refuses
// such an object. Call it on an object the decoder has accepted: on other
// input its answer means nothing (it reports false where it cannot read on).
func DuplicateName(b []byte) (string, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	var few [8][]byte            // folded names, while there are few
	nFew := 0                    // how many
	var many map[string]struct{} // then all of them
	// seen reports whether folded was met before, and records it.
	seen := func(folded []byte) bool {
		if many == nil {
			if slices.ContainsFunc(few[:nFew], func(f []byte) bool { return bytes.Equal(f, folded) }) {
				return true
			}
			if nFew < len(few) {
				few[nFew] = folded
				nFew++
				return false
			}
			many = make(map[string]struct{}, 2*len(few))
			for _, f := range few {
				many[string(f)] = struct{}{}
			}
		}
		if _, ok := many[string(folded)]; ok {
			return true
		}
		many[string(folded)] = struct{}{}
		return false
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return "", false // '}' (the end, or an empty object) or not JSON
		}
		end := stringEnd(b, i)
		if end < 0 {
			return "", false
		}
		folded := b[i+1 : end-1] // a name in lower-case ASCII without escapes, the usual, is its own fold
		if !plainName(folded) {
			var name string
			if json.Unmarshal(b[i:end], &name) != nil {
				return "", false
			}
			folded = []byte(foldName(name))
		}
		if seen(folded) {
			var name string
			_ = json.Unmarshal(b[i:end], &name) // it decoded above, or is plain
			return name, true
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return "", false
		}
		if i = skipValue(b, i+1); i < 0 {
			return "", false
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ',' {
			return "", false // '}' or not JSON
		}
		i++
	}
}

// plainName reports whether a raw JSON name is lower-case ASCII (or no
// letters) without escapes: its own fold.
func plainName(raw []byte) bool {
	for _, c := range raw {
		if c >= utf8.RuneSelf || c == '\\' || c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}

// foldName maps each letter of name to one letter of those Unicode simple
// case folding makes equal to it (the lower case of the smallest), so two
// names encoding/json matches to one field fold to the same string. A name
// in lower-case ASCII, the usual, is its own fold: nothing is allocated.
func foldName(name string) string {
	return strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && (r < 'A' || r > 'Z') {
			return r // lower-case ASCII (k and s too: the Kelvin sign and ſ fold to them) or no letter
		}
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return unicode.ToLower(least)
	}, name)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the JSON string that starts at b[i]
// (a '"'), or -1 if it does not end.
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value that starts at or after
// b[i], or -1 if it does not end. It checks only what it needs to find the
// end: the decoder checks the value itself.
func skipValue(b []byte, i int) int {
	i = skipSpace(b, i)
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				if i = stringEnd(b, i); i < 0 {
					return -1
				}
				i-- // the loop's i++ steps past the closing quote
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\n\r", rune(b[i])) {
		i++
	}
	return i
}
