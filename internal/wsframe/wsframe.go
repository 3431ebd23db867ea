// Package wsframe builds the WebSocket frames a server sends (RFC 6455
// §5.2): final, unmasked, uncompressed frames, each a header and its
// payload. It owns the server-to-client framing of package ws, so that
// every server frame, on the shared writers or on a goroutine that may
// block, is built here and written in one netconn.Conn write; gorilla
// keeps the handshake and the reading of client frames. It also recognises
// the one client frame read before gorilla sees it: a bare pong.
//
// # Concurrency
//
// Functions only: no state.
package wsframe

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// Opcodes of the frames a server sends.
const (
	OpText  byte = 0x1
	OpClose byte = 0x8
	OpPing  byte = 0x9
	OpPong  byte = 0xA
)

// final is the FIN bit: every frame here is a whole message.
const final = 0x80

// MaxControlPayload is what a control frame may carry (§5.5).
const MaxControlPayload = 125

// ErrControlTooLong is AppendControl's error for a payload over
// MaxControlPayload.
var ErrControlTooLong = errors.New("wsframe: control frame payload over 125 bytes")

// AppendHeader appends the header of a final, unmasked frame of opcode op
// whose payload is n bytes; the payload follows.
func AppendHeader(b []byte, op byte, n int) []byte {
	b = append(b, final|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
}

// AppendControl appends a whole control frame (close, ping, pong).
func AppendControl(b []byte, op byte, payload []byte) ([]byte, error) {
	if len(payload) > MaxControlPayload {
		return b, ErrControlTooLong
	}
	return append(AppendHeader(b, op, len(payload)), payload...), nil
}

// CloseNoStatus is the close code a close frame without a payload stands
// for (§7.4.1); it is never sent in one.
const CloseNoStatus = 1005

// maxCloseReason is what fits in a close frame after the two-byte code.
const maxCloseReason = MaxControlPayload - 2

// ClosePayload is a close frame's payload: code and reason, the reason cut
// to what a control frame can carry on a UTF-8 boundary. CloseNoStatus
// gives an empty payload.
func ClosePayload(code int, reason string) []byte {
	if code == CloseNoStatus {
		return []byte{}
	}
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(p, reason...)
}

// BareClientPongLen is the length of a masked, unfragmented pong with no
// payload: what a client sends in answer to an empty ping (the 4-byte mask
// key follows the header and, with no payload, masks nothing).
const BareClientPongLen = 6

// IsBareClientPong reports whether b is exactly such a pong.
func IsBareClientPong(b []byte) bool {
	return len(b) == BareClientPongLen && b[0] == final|OpPong && b[1] == 0x80
}
