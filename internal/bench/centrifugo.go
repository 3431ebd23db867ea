package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Centrifugo's client protocol, as far as the bench drives it: JSON over
// WebSocket (/connection/websocket), where a message carries one or more
// commands (client to server) or replies (server to client), one JSON
// object per line. The bench connects anonymously and subscribes in one
// message:
//
//	{"id":1,"connect":{}}
//	{"id":2,"subscribe":{"channel":"CH"}}
//
// and the server answers each by id ({"id":1,"connect":{…}}, or
// {"id":1,"error":{"code":…,"message":"…"}}). Publications come as pushes,
// {"push":{"channel":"CH","pub":{"data":PAYLOAD,"offset":N}}}. A ping is
// an empty reply, {}, which the client must answer with an empty command,
// {}, within the server's pong timeout or be disconnected; a pong sent
// without a ping is itself a protocol error. The server ends a connection
// with a WebSocket close frame whose code and reason say why.
//
// Over unidirectional SSE (/connection/uni_sse) the connect request rides
// in the cf_connect URL parameter, {"subs":{"CH":{}}} asking for a
// server-side subscription, and every event's data is a push without the
// "push" wrapper: {"connect":{…}} first, then {"channel":…,"pub":{…}},
// {"disconnect":{…}} before the server ends the stream, and {} as a ping
// that needs no answer.

// centrifugoMaxLine bounds one reply line the bench decodes in full (the
// publications it only scans): replies to its two commands and pushes
// other than publications are small.
const centrifugoMaxLine = 64 << 10

// centrifugoPong is the empty command that answers a ping.
var centrifugoPong = []byte("{}")

// Command ids of the handshake.
const (
	centrifugoConnectID   = 1
	centrifugoSubscribeID = 2
)

// centrifugoHandshake returns the WebSocket message that connects
// anonymously and subscribes to ch; with since, the subscription recovers
// what was published after that position.
func centrifugoHandshake(ch string, since *centrifugoPosition) []byte {
	chJSON, _ := json.Marshal(ch)
	b := make([]byte, 0, 128+len(chJSON))
	b = append(b, `{"id":1,"connect":{}}`+"\n"+`{"id":2,"subscribe":{"channel":`...)
	b = append(b, chJSON...)
	if since != nil {
		epochJSON, _ := json.Marshal(since.Epoch)
		b = append(b, `,"recover":true,"epoch":`...)
		b = append(b, epochJSON...)
		b = append(b, `,"offset":`...)
		b = strconv.AppendUint(b, since.Offset, 10)
	}
	return append(b, `}}`...)
}

// centrifugoPosition is a place in a channel's stream.
type centrifugoPosition struct {
	Epoch  string
	Offset uint64
}

// centrifugoUniConnect returns the unidirectional connect request that
// subscribes the connection to ch on the server side.
func centrifugoUniConnect(ch string) []byte {
	chJSON, _ := json.Marshal(ch)
	b := make([]byte, 0, 16+len(chJSON))
	b = append(b, `{"subs":{`...)
	b = append(b, chJSON...)
	return append(b, `:{}}}`...)
}

// isCentrifugoPing reports whether a reply line is a ping: an empty object.
func isCentrifugoPing(line []byte) bool {
	return bytes.Equal(bytes.TrimSpace(line), []byte("{}"))
}

// centrifugoKind is what one reply line is to the bench.
type centrifugoKind int

const (
	// centrifugoOther: a reply or push the bench does not act on (a
	// connect push, join, leave, a publication without a bench payload).
	centrifugoOther centrifugoKind = iota
	centrifugoPing
	// centrifugoPublication: a publication carrying a bench payload.
	centrifugoPublication
	// centrifugoReply: the reply to command ID, or its error (Code > 0).
	centrifugoReply
	// centrifugoDisconnect: the server ends the connection (uni SSE).
	centrifugoDisconnect
)

// centrifugoFrame is one decoded reply line.
type centrifugoFrame struct {
	Kind   centrifugoKind
	ID     uint32
	Seq, T int64  // centrifugoPublication
	Code   uint32 // the error or disconnect code
	Reason string // the error message or disconnect reason
	// Sub is the result of a subscribe command (recoverable channels).
	Sub *centrifugoSubscribed
}

// centrifugoSubscribed is the part of a subscribe result the bench reads:
// the stream's position and, after a recovery, what was missed.
type centrifugoSubscribed struct {
	Epoch        string            `json:"epoch"`
	Offset       uint64            `json:"offset"`
	Recovered    bool              `json:"recovered"`
	Publications []json.RawMessage `json:"publications"`
}

// centrifugoStatus is an error or a disconnect: a code and a text.
type centrifugoStatus struct {
	Code    uint32 `json:"code"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
}

// centrifugoPush is the part of a push the bench reads.
type centrifugoPush struct {
	Pub        json.RawMessage   `json:"pub"`
	Disconnect *centrifugoStatus `json:"disconnect"`
}

// centrifugoWire is the part of a reply line the bench reads; the push
// fields are at the top level over uni SSE.
type centrifugoWire struct {
	ID        uint32                `json:"id"`
	Error     *centrifugoStatus     `json:"error"`
	Subscribe *centrifugoSubscribed `json:"subscribe"`
	Push      *centrifugoPush       `json:"push"`
	centrifugoPush
}

var (
	errCentrifugoEmpty   = errors.New("empty centrifugo reply")
	errCentrifugoTooLong = errors.New("centrifugo reply longer than 64 KiB")
)

// parseCentrifugo decodes one reply line. Publications carrying a bench
// payload are only scanned, as the other servers' are; any other line is
// decoded as JSON, and a line that is not a JSON object is an error.
func parseCentrifugo(line []byte) (centrifugoFrame, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return centrifugoFrame{}, errCentrifugoEmpty
	}
	if isCentrifugoPing(line) {
		return centrifugoFrame{Kind: centrifugoPing}, nil
	}
	if bytes.HasPrefix(line, []byte(`{"push":{`)) || bytes.HasPrefix(line, []byte(`{"channel":`)) {
		if seq, t, ok := scanPayload(line); ok {
			return centrifugoFrame{Kind: centrifugoPublication, Seq: seq, T: t}, nil
		}
	}
	if len(line) > centrifugoMaxLine {
		return centrifugoFrame{}, errCentrifugoTooLong
	}
	var w centrifugoWire
	if line[0] != '{' {
		return centrifugoFrame{}, fmt.Errorf("centrifugo reply %.80q is not a JSON object", line)
	}
	if err := json.Unmarshal(line, &w); err != nil {
		return centrifugoFrame{}, fmt.Errorf("decode centrifugo reply %.80q: %w", line, err)
	}
	push := &w.centrifugoPush
	if w.Push != nil {
		push = w.Push
	}
	switch {
	case w.ID > 0:
		f := centrifugoFrame{Kind: centrifugoReply, ID: w.ID, Sub: w.Subscribe}
		if w.Error != nil {
			f.Code, f.Reason, f.Sub = w.Error.Code, w.Error.Message, nil
		}
		return f, nil
	case w.Error != nil:
		return centrifugoFrame{}, fmt.Errorf("centrifugo error %d %q without a command id", w.Error.Code, w.Error.Message)
	case push.Disconnect != nil:
		return centrifugoFrame{Kind: centrifugoDisconnect, Code: push.Disconnect.Code, Reason: push.Disconnect.Reason}, nil
	}
	return centrifugoFrame{Kind: centrifugoOther}, nil
}

var centrifugoOffsetKey = []byte(`"offset":`)

// scanCentrifugoOffset returns the offset of a publication (pushed, or
// recovered in a subscribe result). The offset follows the data, so the
// last "offset" key is the publication's (the bench's payloads have none).
func scanCentrifugoOffset(pub []byte) (uint64, bool) {
	i := bytes.LastIndex(pub, centrifugoOffsetKey)
	if i < 0 {
		return 0, false
	}
	n, _, ok := scanInt(pub[i+len(centrifugoOffsetKey):])
	return uint64(n), ok
}

// centrifugoAPIError returns the error in a server API answer: Centrifugo
// answers 200 with {"error":{"code":…,"message":…}} when a call fails.
func centrifugoAPIError(answer []byte) error {
	// The answer of every successful publish: no decoding on the load
	// generator, which shares the CPU with the server.
	if bytes.HasPrefix(answer, []byte(`{"result":`)) {
		return nil
	}
	var a struct {
		Error *centrifugoStatus `json:"error"`
	}
	if err := json.Unmarshal(answer, &a); err != nil {
		return fmt.Errorf("decode answer %.200q: %w", answer, err)
	}
	if a.Error != nil {
		return fmt.Errorf("centrifugo error %d: %s", a.Error.Code, a.Error.Message)
	}
	return nil
}
