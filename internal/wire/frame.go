package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Position is where a frame leaves its channel (the protocol's
// {epoch, offset}). The package decodes the protocol as any client would,
// from its JSON, and imports none of the server's types: a field the
// server renamed fails here as it would in a browser, and the session
// package's own tests can use it.
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// Limits are the hello frame's limits.
type Limits struct {
	MaxMessageBytes int `json:"maxMessageBytes"`
	MaxChannels     int `json:"maxChannels"`
	MaxQueueBytes   int `json:"maxQueueBytes"`
}

// Error is the {code, reason} of an error answer.
type Error struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// Frame is a decoded server frame with every field a test looks at.
type Frame struct {
	Type      string          `json:"type"`
	ID        uint64          `json:"id"`
	Session   string          `json:"session"`
	Transport string          `json:"transport"`
	Ping      int             `json:"ping"`
	Limits    *Limits         `json:"limits"`
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset"`
	Epoch     string          `json:"epoch"`
	Data      json.RawMessage `json:"data"`
	Recovered *bool           `json:"recovered"`
	Code      int             `json:"code"`
	Reason    string          `json:"reason"`
	Reconnect bool            `json:"reconnect"`
	Client    string          `json:"client"` // join, leave
	User      string          `json:"user"`
	Key       string          `json:"key"` // a reply's idempotency key
}

// Position is where a subscribed or message frame leaves its channel.
func (f Frame) Position() Position {
	return Position{Epoch: f.Epoch, Offset: f.Offset}
}

// Number returns the integer a test published: the data is either a JSON
// number or an object with a field "n".
func (f Frame) Number() (int, error) {
	if n, err := strconv.Atoi(string(f.Data)); err == nil {
		return n, nil
	}
	var obj struct {
		N *int `json:"n"`
	}
	if err := json.Unmarshal(f.Data, &obj); err != nil || obj.N == nil {
		return 0, fmt.Errorf("message data %.80s is not a test number", f.Data)
	}
	return *obj.N, nil
}

// DecodeFrames decodes the newline-separated frames of one WebSocket
// message, SSE event or SockJS message; blank lines are skipped.
func DecodeFrames(data []byte) ([]Frame, error) {
	var out []Frame
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var f Frame
		if err := json.Unmarshal(line, &f); err != nil {
			return out, fmt.Errorf("frame %.200q: %w", line, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// Subscribe is the subscribe command with id for ch, resuming after since
// when it is not nil.
func Subscribe(id uint64, ch string, since *Position) []byte {
	cmd := map[string]any{"type": "subscribe", "id": id, "channel": ch}
	if since != nil {
		cmd["since"] = since
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		panic(err) // strings and numbers always encode
	}
	return b
}

// SubscribeAll is one subscribe command per channel (ids from 1), each
// resuming from its position in since, if any.
func SubscribeAll(channels []string, since map[string]Position) [][]byte {
	out := make([][]byte, 0, len(channels))
	for i, ch := range channels {
		var p *Position
		if pos, ok := since[ch]; ok {
			p = &pos
		}
		out = append(out, Subscribe(uint64(i+1), ch, p))
	}
	return out
}
