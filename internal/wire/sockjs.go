package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// SockJSFrame is one decoded SockJS frame: o (open), h (heartbeat),
// a[...] (messages, each carrying WaterSpout frames) or c[code,reason]
// (close).
type SockJSFrame struct {
	Kind     byte      // 'o', 'h', 'a' or 'c'
	Messages [][]Frame // a: each SockJS message's frames
	Code     int       // c
	Reason   string    // c
}

// DecodeSockJS decodes one SockJS frame (a trailing newline is allowed).
func DecodeSockJS(data []byte) (SockJSFrame, error) {
	data = bytes.TrimRight(data, "\n")
	if len(data) == 0 {
		return SockJSFrame{}, fmt.Errorf("empty SockJS frame")
	}
	sf := SockJSFrame{Kind: data[0]}
	switch sf.Kind {
	case 'o', 'h':
		return sf, nil
	case 'a':
		var msgs []string
		if err := json.Unmarshal(data[1:], &msgs); err != nil {
			return sf, fmt.Errorf("bad SockJS frame %.80q: %w", data, err)
		}
		for _, m := range msgs {
			fs, err := DecodeFrames([]byte(m))
			if err != nil {
				return sf, err
			}
			sf.Messages = append(sf.Messages, fs)
		}
		return sf, nil
	case 'c':
		var cf []any
		if err := json.Unmarshal(data[1:], &cf); err != nil || len(cf) != 2 {
			return sf, fmt.Errorf("bad SockJS close frame %q", data)
		}
		code, _ := cf[0].(float64)
		sf.Code = int(code)
		sf.Reason, _ = cf[1].(string)
		return sf, nil
	}
	return sf, fmt.Errorf("unknown SockJS frame %.80q", data)
}
