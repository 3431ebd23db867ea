package wire

import (
	"encoding/binary"
	"fmt"
	"io"
)

// WebSocket frames byte by byte (RFC 6455 §5.2), for tests that must send
// what a client library would refuse to (a frame cut anywhere, a bare pong
// between fragments, a length over the limit) or read a server's frames
// with nothing but a socket.

// ClientFrame is one masked client frame: opcode op, FIN set when fin,
// with payload, its length in as few bytes as RFC 6455 allows.
func ClientFrame(op byte, fin bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0, 0}
	switch n := len(payload); {
	case n < 126:
		f[1] = byte(n)
	case n <= 0xffff:
		f[1] = 126
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f[1] = 127
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	f[1] |= 0x80
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	return f
}

// maxServerFrame bounds the payload ReadServerFrame accepts, so that a
// broken length cannot make it allocate without limit.
const maxServerFrame = 64 << 20

// ReadServerFrame reads one server frame from r: its opcode and unmasked
// payload. A server never masks its frames; a masked one is an error.
func ReadServerFrame(r io.Reader) (op byte, payload []byte, err error) {
	var hdr [2]byte
	var ext [8]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return 0, nil, fmt.Errorf("frame header: %w", err)
	}
	if hdr[1]&0x80 != 0 {
		return 0, nil, fmt.Errorf("masked server frame % x", hdr[:2])
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, ext[:2]); err != nil {
			return 0, nil, fmt.Errorf("frame length: %w", err)
		}
		n = uint64(binary.BigEndian.Uint16(ext[:2]))
	case 127:
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, fmt.Errorf("frame length: %w", err)
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > maxServerFrame {
		return 0, nil, fmt.Errorf("server frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("frame payload: %w", err)
	}
	return hdr[0] & 0x0f, payload, nil
}
