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
// session.ScanJSONValue checks, data or key over their limits, and every
// malformed body.
func decodePublishFast(body []byte, maxData int) (publishRequest, bool) {
	p := fastParser{b: body}
	p.space()
	req, ok := p.publication(maxData)
	if !ok {
		return publishRequest{}, false
	}
	p.space()
	if p.i != len(p.b) {
		return publishRequest{}, false
	}
	return req, true
}

// decodeBatchFast is decodePublishFast for a POST /api/batch body,
// {"publications":[PUBLICATION, ...]} with 1..maxBatchPublications items,
// each taken as decodePublishFast takes a publish body. Like it, it never
// refuses: on anything else, or on any item it does not take, it answers
// ok=false and decodeBatch runs the strict path (FuzzDecodeBatchFast holds
// the two to the same outcome).
func decodeBatchFast(body []byte, maxData int) (batchRequest, bool) {
	p := fastParser{b: body}
	p.space()
	if !p.byte('{') {
		return batchRequest{}, false
	}
	p.space()
	if name, ok := p.plainString(); !ok || string(name) != "publications" {
		return batchRequest{}, false
	}
	p.space()
	if !p.byte(':') {
		return batchRequest{}, false
	}
	p.space()
	if !p.byte('[') {
		return batchRequest{}, false
	}
	var out batchRequest
	for {
		if len(out.Publications) == maxBatchPublications {
			return batchRequest{}, false
		}
		p.space()
		req, ok := p.publication(maxData)
		if !ok {
			return batchRequest{}, false
		}
		out.Publications = append(out.Publications, req)
		p.space()
		if p.byte(']') {
			break
		}
		if !p.byte(',') {
			return batchRequest{}, false
		}
	}
	p.space()
	if !p.byte('}') {
		return batchRequest{}, false
	}
	p.space()
	if p.i != len(p.b) {
		return batchRequest{}, false
	}
	return out, true
}

// publication reads one publication object at the parser's place (see
// decodePublishFast for what it takes) and leaves the place after it.
func (p *fastParser) publication(maxData int) (req publishRequest, ok bool) {
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
			end, spaced, ok := session.ScanJSONValue(p.b[p.i:])
			if !ok {
				return publishRequest{}, false
			}
			dataStart, dataEnd, dataSpace = p.i, p.i+end, spaced
			p.i = dataEnd
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
	if seen&3 != 3 {
		return publishRequest{}, false
	}
	data := p.b[dataStart:dataEnd]
	if dataSpace {
		// Rare (a pretty-printed body): json.Compact is what checkData uses,
		// so the bytes are the strict path's.
		var b bytes.Buffer
		b.Grow(len(data))
		if json.Compact(&b, data) != nil {
			return publishRequest{}, false // cannot happen: ScanJSONValue checked it
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

// fastParser walks a publish body for decodePublishFast. Its methods
// return false (or ok=false) where the body is not JSON or holds something
// decodePublishFast leaves to the strict path.
type fastParser struct {
	b []byte
	i int
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
