package server

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/waterspout/waterspout/session"
)

// decodePublishFast decodes the publish body that backends send nearly
// always, a JSON object of "channel", "data" and an optional "key", in one
// pass over the body, and returns ok=false for anything else. The strict
// path (decodeStrict, then the checks of decodePublish) makes four passes
// over the body and two more over the data; it was 15 % of the server's CPU
// under S4 (docs/BENCHMARKS.md, "S4 publish CPU cut").
//
// It accepts only what the strict path accepts, with the same values
// (FuzzDecodePublishFast holds the two to that), and it never refuses: on
// anything it does not take whole, or is not sure of, it answers ok=false
// and decodePublish runs the strict path, so a refusal always has the
// strict path's status and reason. What it leaves to the strict path: a
// name that is not exactly channel, data or key in lower case without
// escapes (the strict path matches names without regard to case, or
// refuses them), a name given twice, a channel or key with an escape or a
// control character, a key that is null, a \u escape of a UTF-16 surrogate
// anywhere (session.ValidJSONText's concern), data nested deeper than
// maxFastDepth, data or key over their limits, and every malformed body.
func decodePublishFast(body []byte, maxData int) (req publishRequest, ok bool) {
	p := fastParser{b: body}
	p.space()
	if !p.byte('{') {
		return publishRequest{}, false
	}
	var seen uint8 // 1: channel, 2: data, 4: key
	var dataStart, dataEnd int
	var dataSpace bool // data has white space to compact away
	for {
		p.space()
		name, ok := p.plainString()
		if !ok {
			return publishRequest{}, false
		}
		p.space()
		if !p.byte(':') {
			return publishRequest{}, false
		}
		p.space()
		var field uint8
		switch string(name) { // compiled without allocating
		case "channel":
			field = 1
			ch, ok := p.plainString()
			if !ok {
				return publishRequest{}, false
			}
			req.Channel = string(ch)
			if session.ValidateChannel(req.Channel) != nil {
				return publishRequest{}, false
			}
		case "data":
			field = 2
			dataStart, p.spaced = p.i, false
			if !p.value(0) {
				return publishRequest{}, false
			}
			dataEnd, dataSpace = p.i, p.spaced
		case "key":
			field = 4
			key, ok := p.plainString()
			if !ok || len(key) > session.MaxKeyLen {
				return publishRequest{}, false
			}
			req.Key = string(key)
		default:
			return publishRequest{}, false
		}
		if seen&field != 0 {
			return publishRequest{}, false
		}
		seen |= field
		p.space()
		if p.byte('}') {
			break
		}
		if !p.byte(',') {
			return publishRequest{}, false
		}
	}
	p.space()
	if p.i != len(p.b) || seen&3 != 3 {
		return publishRequest{}, false
	}
	data := body[dataStart:dataEnd]
	if dataSpace {
		// Rare (a pretty-printed body): json.Compact is what checkData uses,
		// so the bytes are the strict path's.
		var b bytes.Buffer
		b.Grow(len(data))
		if json.Compact(&b, data) != nil {
			return publishRequest{}, false // cannot happen: p.value checked it
		}
		req.Data = b.Bytes()
	} else {
		req.Data = bytes.Clone(data) // the body is not kept: history holds only the data
	}
	if len(req.Data) > maxData {
		return publishRequest{}, false
	}
	return req, true
}

// maxFastDepth is the deepest data decodePublishFast checks itself; deeper
// data goes the strict way (encoding/json allows 10,000 levels).
const maxFastDepth = 64

// fastParser walks a JSON text, checking it as encoding/json and
// session.ValidJSONText together would, for decodePublishFast. Every
// method returns false (or ok=false) where the text is not JSON or holds
// something decodePublishFast leaves to the strict path.
type fastParser struct {
	b      []byte
	i      int
	spaced bool // white space was skipped inside a value
}

// space skips JSON white space.
func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c if it is next.
func (p *fastParser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// plainString reads a JSON string without escapes or control characters
// and returns its bytes (valid UTF-8), which are its value.
func (p *fastParser) plainString() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c == '\\' || c < 0x20:
			return nil, false
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false
			}
			p.i += size
		}
	}
	return nil, false
}

// value checks one JSON value (white space before it already skipped) at
// the given nesting depth, noting in p.spaced white space inside it.
func (p *fastParser) value(depth int) bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.string()
	case c == '{' || c == '[':
		return p.container(depth)
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	}
	return false
}

// container checks an object or an array.
func (p *fastParser) container(depth int) bool {
	if depth >= maxFastDepth {
		return false
	}
	object := p.b[p.i] == '{'
	end := byte(']')
	if object {
		end = '}'
	}
	p.i++
	p.skipSpace()
	if p.byte(end) {
		return true
	}
	for {
		if object {
			if !p.string() {
				return false
			}
			p.skipSpace()
			if !p.byte(':') {
				return false
			}
			p.skipSpace()
		}
		if !p.value(depth + 1) {
			return false
		}
		p.skipSpace()
		if p.byte(end) {
			return true
		}
		if !p.byte(',') {
			return false
		}
		p.skipSpace()
	}
}

// skipSpace is space inside a value: it notes that there was some.
func (p *fastParser) skipSpace() {
	i := p.i
	p.space()
	if p.i != i {
		p.spaced = true
	}
}

// string checks a JSON string: valid UTF-8, no control character, valid
// escapes, and no \u escape of a surrogate (left to the strict path, as
// session.ValidJSONText refuses the lone ones).
func (p *fastParser) string() bool {
	if !p.byte('"') {
		return false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return true
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return false
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				r, ok := fastHex4(p.b, p.i+2)
				if !ok || 0xD800 <= r && r <= 0xDFFF {
					return false
				}
				p.i += 6
			default:
				return false
			}
		case c < 0x20:
			return false
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			p.i += size
		}
	}
	return false
}

// number checks a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
// What follows it is the caller's to check (01 is 0 then 1: not a delimiter).
func (p *fastParser) number() bool {
	p.byte('-')
	if p.byte('0') {
		// no more integer digits
	} else if !p.digits() {
		return false
	}
	if p.byte('.') && !p.digits() {
		return false
	}
	if p.byte('e') || p.byte('E') {
		if !p.byte('+') {
			p.byte('-')
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits consumes one or more decimal digits.
func (p *fastParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// literal consumes word (true, false or null).
func (p *fastParser) literal(word string) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		return false
	}
	p.i += len(word)
	return true
}

// fastHex4 parses the four hex digits at b[i:i+4].
func fastHex4(b []byte, i int) (rune, bool) {
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
