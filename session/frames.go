package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Server → client frames. Field names and meanings are the wire protocol
// (docs/PROTOCOL.md); extra fields may be added, none may change meaning.

type messageFrame struct {
	Type    string          `json:"type"`
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	Epoch   string          `json:"epoch"`
	Data    json.RawMessage `json:"data"`
	Key     string          `json:"key,omitempty"`
	Time    int64           `json:"time,omitempty"`
}

// Limits are announced in the hello frame so clients can respect them.
type Limits struct {
	MaxMessageBytes int `json:"maxMessageBytes"` // largest incoming frame or publish data
	MaxChannels     int `json:"maxChannels"`     // subscriptions per session
	MaxQueueBytes   int `json:"maxQueueBytes"`   // queued outgoing bytes before the session is dropped as slow
}

type helloFrame struct {
	Type      string `json:"type"`
	Session   string `json:"session"`
	Transport string `json:"transport"`
	Ping      int    `json:"ping"`
	Limits    Limits `json:"limits"`
	// Client is the id presence lists a long-poll client under (see
	// PollPresence); other transports are listed under Session.
	Client string `json:"client,omitempty"`
}

type subscribedFrame struct {
	Type      string `json:"type"`
	ID        uint64 `json:"id,omitempty"`
	Channel   string `json:"channel"`
	Epoch     string `json:"epoch"`
	Offset    uint64 `json:"offset"`
	Recovered *bool  `json:"recovered,omitempty"`
}

type replyFrame struct {
	Type    string `json:"type"`
	ID      uint64 `json:"id,omitempty"`
	Channel string `json:"channel,omitempty"`
	Offset  uint64 `json:"offset,omitempty"`
	Epoch   string `json:"epoch,omitempty"`
}

type errorFrame struct {
	Type   string `json:"type"`
	ID     uint64 `json:"id,omitempty"`
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

type disconnectFrame struct {
	Type string `json:"type"`
	Disconnect
}

// PingFrame is the heartbeat frame. Clients never answer it.
var PingFrame = []byte(`{"type":"ping"}`)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("session: encode frame: %v", err)) // only fixed struct types reach here
	}
	return b
}

// DisconnectFrame encodes d as a `disconnect` frame.
func DisconnectFrame(d Disconnect) []byte { return mustJSON(disconnectFrame{"disconnect", d}) }

// ErrorFrame encodes err as an `error` frame answering command id.
func ErrorFrame(id uint64, err error) []byte {
	e := AsError(err)
	return mustJSON(errorFrame{Type: "error", ID: id, Code: e.Code, Reason: e.Reason})
}

// Command is one client → server frame (WebSocket and SockJS).
type Command struct {
	Type    string          `json:"type"`
	ID      uint64          `json:"id,omitempty"`
	Channel string          `json:"channel,omitempty"`
	Since   *Position       `json:"since,omitempty"`
	Token   string          `json:"token,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Key     string          `json:"key,omitempty"`
}

// maxCommandsPerFrame bounds the work one incoming frame can ask for.
const maxCommandsPerFrame = 100

// DecodeCommands parses one incoming frame: one or more JSON objects separated
// by newlines. Blank lines are ignored. It fails on anything that is not a
// well-formed command object; the caller answers with an error frame.
func DecodeCommands(frame []byte) ([]Command, error) {
	var cmds []Command
	for line := range bytes.SplitSeq(frame, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(cmds) == maxCommandsPerFrame {
			return nil, badRequest("more than %d commands in one frame", maxCommandsPerFrame)
		}
		if !ValidJSONText(line) { // see ValidJSONText: keys and names would merge
			return nil, badRequest("malformed command: not valid UTF-8 (or a \\u escape of a lone surrogate)")
		}
		var c Command
		dec := json.NewDecoder(bytes.NewReader(line))
		if err := dec.Decode(&c); err != nil {
			return nil, badRequest("malformed command: %v", jsonReason(err))
		}
		if !JSONEnded(dec) {
			return nil, badRequest("malformed command: trailing data")
		}
		if name, dup := DuplicateName(line); dup {
			return nil, badRequest("malformed command: the name %q appears twice (names match without regard to case)", truncate(name, 64))
		}
		if c.Type == "" {
			return nil, badRequest("command without type")
		}
		cmds = append(cmds, c)
	}
	if len(cmds) == 0 {
		return nil, badRequest("empty frame")
	}
	return cmds, nil
}

// jsonReason shortens encoding/json errors to something safe to echo,
// in the protocol's terms rather than Go's.
func jsonReason(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		if typ.Field == "" {
			return "a command is a JSON object, such as {\"type\":\"ping\",\"id\":1}"
		}
		return fmt.Sprintf("field %s must not be a JSON %s", typ.Field, typ.Value)
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}
