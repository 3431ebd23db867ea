package session

import (
	"bytes"
	"unicode/utf8"
)

// ScanJSONValue checks, in one pass, the JSON value that b starts with
// (after white space) and returns the index just after it, and whether
// white space was skipped inside it (then json.Compact would shorten it).
// What follows the value is the caller's to check.
//
// ok=true promises that b[:end] is a JSON value that json.Valid and
// ValidJSONText both accept. ok=false does not mean it is invalid: the scan
// also leaves to those full checks a \u escape of a UTF-16 surrogate (a
// pair is valid, a lone half is not: ValidJSONText tells) and nesting
// deeper than maxScanDepth (encoding/json allows 10,000 levels). It is the
// fast path of the publish checks: encoding/json's scanner costs a
// function call per byte (FuzzScanJSONValue holds it to the promise).
func ScanJSONValue(b []byte) (end int, spaced, ok bool) {
	s := jsonScan{b: b, i: skipSpace(b, 0)}
	if !s.value(0) {
		return 0, false, false
	}
	return s.i, s.spaced, true
}

// validJSONQuick reports whether ScanJSONValue vouches for data as one
// whole JSON value: then json.Valid and ValidJSONText need not read it.
func validJSONQuick(data []byte) bool {
	end, _, ok := ScanJSONValue(data)
	return ok && skipSpace(data, end) == len(data)
}

// maxScanDepth is the deepest nesting ScanJSONValue checks itself.
const maxScanDepth = 64

// jsonScan is ScanJSONValue's state: the text, where it is, and whether it
// skipped white space inside the value.
type jsonScan struct {
	b      []byte
	i      int
	spaced bool
}

// space skips white space inside the value, noting that there was some.
func (s *jsonScan) space() {
	if i := skipSpace(s.b, s.i); i != s.i {
		s.i, s.spaced = i, true
	}
}

// next consumes c if it is next.
func (s *jsonScan) next(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *jsonScan) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.string()
	case c == '{' || c == '[':
		return s.container(depth)
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

// container checks an object or an array. Names repeated inside data are
// not looked for: encoding/json does not refuse them either, and data is
// delivered as it is, never decoded.
func (s *jsonScan) container(depth int) bool {
	if depth >= maxScanDepth {
		return false
	}
	object := s.b[s.i] == '{'
	end := byte(']')
	if object {
		end = '}'
	}
	s.i++
	s.space()
	if s.next(end) {
		return true
	}
	for {
		if object {
			if s.i >= len(s.b) || s.b[s.i] != '"' || !s.string() {
				return false
			}
			s.space()
			if !s.next(':') {
				return false
			}
			s.space()
		}
		if !s.value(depth + 1) {
			return false
		}
		s.space()
		if s.next(end) {
			return true
		}
		if !s.next(',') {
			return false
		}
		s.space()
	}
}

// string checks a JSON string: valid UTF-8, no control character, valid
// escapes, and no \u escape of a surrogate (left to ValidJSONText).
func (s *jsonScan) string() bool {
	s.i++ // the opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				r, ok := hex4(s.b, s.i+2)
				if !ok || 0xD800 <= r && r <= 0xDFFF {
					return false
				}
				s.i += 6
			default:
				return false
			}
		case c < 0x20:
			return false
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			s.i += size
		}
	}
	return false
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. What
// follows is the caller's to check: in 01, the number is 0.
func (s *jsonScan) number() bool {
	s.next('-')
	if !s.next('0') && !s.digits() {
		return false
	}
	if s.next('.') && !s.digits() {
		return false
	}
	if s.next('e') || s.next('E') {
		if !s.next('+') {
			s.next('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits consumes one or more decimal digits.
func (s *jsonScan) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// literal consumes word (true, false or null).
func (s *jsonScan) literal(word string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return false
	}
	s.i += len(word)
	return true
}
