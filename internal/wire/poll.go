package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// PollAnswer is a decoded long-poll answer: messages and cursor, or error.
type PollAnswer struct {
	Messages []Frame `json:"messages"`
	Cursor   *string `json:"cursor"`
	Error    *Error  `json:"error"`
}

// DecodePoll decodes a poll answer's body. With a callback the body must be
// the JSONP call /**/callback(...); and its argument is decoded.
func DecodePoll(body []byte, callback string) (PollAnswer, error) {
	if callback != "" {
		prefix, suffix := "/**/"+callback+"(", ");"
		b := bytes.TrimSpace(body)
		if !bytes.HasPrefix(b, []byte(prefix)) || !bytes.HasSuffix(b, []byte(suffix)) {
			return PollAnswer{}, fmt.Errorf("not a JSONP call of %s: %.80q", callback, body)
		}
		body = b[len(prefix) : len(b)-len(suffix)]
	}
	var a PollAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("poll answer %.200q: %w", body, err)
	}
	if a.Error == nil && (a.Messages == nil || a.Cursor == nil) {
		return a, fmt.Errorf("poll answer %.200q lacks messages or cursor", body)
	}
	return a, nil
}
