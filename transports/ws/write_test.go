package ws

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/session"
)

// readFrame parses one server frame (RFC 6455 §5.2): fin, opcode, payload.
func readFrame(t *testing.T, b []byte) (fin bool, op byte, payload, rest []byte) {
	t.Helper()
	if len(b) < 2 || b[1]&0x80 != 0 {
		t.Fatalf("not an unmasked server frame: % x", b[:min(len(b), 4)])
	}
	fin, op = b[0]&0x80 != 0, b[0]&0x0f
	if b[0]&0x70 != 0 {
		t.Fatalf("reserved bits set: %08b", b[0])
	}
	n, b := uint64(b[1]&0x7f), b[2:]
	switch n {
	case 126:
		n, b = uint64(binary.BigEndian.Uint16(b)), b[2:]
		if n < 126 {
			t.Fatalf("16-bit length %d is not minimal", n)
		}
	case 127:
		n, b = binary.BigEndian.Uint64(b), b[8:]
		if n <= 0xFFFF || n>>63 != 0 {
			t.Fatalf("64-bit length %d is not minimal", n)
		}
	}
	return fin, op, b[:n], b[n:]
}

// The frames TryWriteBatch builds without gorilla are single, final text
// frames with the minimal length encoding (7, 16 or 64 bits), carrying the
// batch's frames joined by "\n".
func TestAppendTextFrame(t *testing.T) {
	for _, n := range []int{1, 125, 126, 127, 65535, 65536, 200000} {
		for _, parts := range []int{1, 3} {
			var batch []session.Item
			var texts []string
			size := 0
			for i := range parts {
				f := strings.Repeat(string(rune('a'+i)), n)
				batch = append(batch, session.Item{Frame: []byte(f)})
				texts = append(texts, f)
				size += n
			}
			b := appendTextFrame([]byte("prefix"), batch)
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatal("appendTextFrame lost what it appended to")
			}
			fin, op, payload, rest := readFrame(t, b[len("prefix"):])
			if !fin || op != 1 || string(payload) != strings.Join(texts, "\n") || len(rest) != 0 {
				t.Fatalf("%d × %d bytes: fin %v op %d, %d payload bytes, %d left over", parts, n, fin, op, len(payload), len(rest))
			}
		}
	}
}
