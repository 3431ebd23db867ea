package session

import (
	"encoding/json"
	"errors"
	"io"
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
