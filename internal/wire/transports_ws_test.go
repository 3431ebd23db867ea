package wire

import (
	"bytes"
	"strings"
	"testing"
)

// A client frame, unmasked and stripped of its mask bit, reads back as the
// server frame of the same opcode and payload, at every length encoding.
func TestClientFrameReadsBack(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		payload := bytes.Repeat([]byte("ab"), n/2+1)[:n]
		f := ClientFrame(1, true, payload)
		if f[0] != 0x81 || f[1]&0x80 == 0 {
			t.Fatalf("%d bytes: header % x, want FIN text, masked", n, f[:2])
		}
		hlen := len(f) - n - 4
		mask := f[hlen : hlen+4]
		server := append([]byte(nil), f[:hlen]...)
		server[1] &^= 0x80
		for i := range n {
			server = append(server, f[hlen+4+i]^mask[i%4])
		}
		op, got, err := ReadServerFrame(bytes.NewReader(server))
		if err != nil || op != 1 || !bytes.Equal(got, payload) {
			t.Fatalf("%d bytes: op %d, %d bytes, %v", n, op, len(got), err)
		}
	}
	if f := ClientFrame(0xa, false, nil); f[0] != 0x0a {
		t.Errorf("a pong without FIN: % x", f)
	}
}

func TestReadServerFrameRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"masked":    "\x81\x81abcdx",
		"cut":       "\x81\x05ab",
		"too large": "\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00",
		"empty":     "",
	} {
		if op, p, err := ReadServerFrame(strings.NewReader(in)); err == nil {
			t.Errorf("%s: op %d, %q, want an error", name, op, p)
		}
	}
}
