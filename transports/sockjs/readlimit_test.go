package sockjs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
)

// wsFrame builds a masked client frame with a payload of n bytes.
func wsFrame(fin bool, opcode byte, n int) []byte {
	return wire.ClientFrame(opcode, fin, bytes.Repeat([]byte{'x'}, n))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestFrameLimiter(t *testing.T) {
	const limit = 100
	text, cont, bin, ping := byte(1), byte(0), byte(2), byte(9)
	tests := []struct {
		name     string
		stream   []byte
		wantOver bool
		wantPass int // bytes before the offending header, when over
	}{
		{"message at the limit", wsFrame(true, text, limit), false, 0},
		{"message over the limit", wsFrame(true, text, limit+1), true, 0},
		{"16-bit length", wsFrame(true, bin, 300), true, 0},
		{"after a good message", cat(wsFrame(true, text, 10), wsFrame(true, text, 101)), true, 16},
		{"fragments add up", cat(wsFrame(false, text, 60), wsFrame(true, cont, 41)), true, 66},
		{"fragments within the limit", cat(wsFrame(false, text, 60), wsFrame(true, cont, 40)), false, 0},
		{"control frames do not count", cat(wsFrame(false, text, 60), wsFrame(true, ping, 125), wsFrame(true, cont, 40)), false, 0},
		{"a new message starts from zero", cat(wsFrame(true, text, 90), wsFrame(true, text, 90), wsFrame(true, bin, 100)), false, 0},
		{"announced 1 GiB, nothing sent", []byte{0x81, 0xff, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4}, true, 0},
		{"largest 64-bit length", []byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pass, over := feedChunks(limit, tt.stream, len(tt.stream))
			if over != tt.wantOver || (over && pass != tt.wantPass) {
				t.Fatalf("over %v at %d, want over %v at %d", over, pass, tt.wantOver, tt.wantPass)
			}
			for _, chunk := range []int{1, 3, 7} {
				if err := sameVerdict(limit, tt.stream, chunk); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// sameVerdict checks that feeding stream in chunks finds what feeding it
// whole does. Cut into chunks, the start of the offending header may already
// have been passed on with an earlier chunk, but never its end, nor any of
// its payload.
func sameVerdict(limit uint64, stream []byte, chunk int) error {
	wholePass, wholeOver := feedChunks(limit, stream, len(stream))
	pass, over := feedChunks(limit, stream, chunk)
	if over != wholeOver || over && (pass < wholePass || pass >= wholePass+headerLen(stream[wholePass:])) {
		return fmt.Errorf("chunks of %d: over %v at %d; whole: over %v at %d", chunk, over, pass, wholeOver, wholePass)
	}
	return nil
}

// feedChunks feeds stream in chunks and returns the absolute offset of the
// bytes passed on and whether the limit was hit.
func feedChunks(limit uint64, stream []byte, chunk int) (int, bool) {
	f := frameLimiter{limit: limit}
	chunk = max(chunk, 1)
	for off := 0; off < len(stream); off += chunk {
		end := min(off+chunk, len(stream))
		if pass, over := f.feed(stream[off:end]); over {
			return off + pass, true
		}
	}
	return len(stream), false
}

// FuzzFrameLimiter checks that any byte stream, cut anywhere, gets the same
// verdict at the same header, and never panics.
func FuzzFrameLimiter(f *testing.F) {
	f.Add(wsFrame(true, 1, 10), uint16(100), uint8(1))
	f.Add(cat(wsFrame(false, 1, 60), wsFrame(true, 9, 5), wsFrame(true, 0, 50)), uint16(100), uint8(3))
	f.Add([]byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, uint16(0), uint8(5))
	f.Fuzz(func(t *testing.T, stream []byte, limit uint16, chunk uint8) {
		if err := sameVerdict(uint64(limit), stream, int(chunk)); err != nil {
			t.Fatal(err)
		}
		if pass, _ := feedChunks(uint64(limit), stream, len(stream)); pass > len(stream) {
			t.Fatalf("passed %d of %d bytes", pass, len(stream))
		}
	})
}

// limitConn passes on what precedes an oversized message, reports it once,
// and then never returns data again until the connection closes.
func TestLimitConn(t *testing.T) {
	server, client := net.Pipe()
	overs := 0
	c := newLimitConn(server, 100, time.Minute, func() { overs++ })
	good := wsFrame(true, 1, 10)
	go func() {
		_, _ = client.Write(cat(good, wsFrame(true, 1, 101)))
		_, _ = client.Write([]byte("more of the oversized message"))
		client.Close()
	}()
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, good) {
		t.Fatalf("passed on %q, want only the good frame %q", got, good)
	}
	if overs != 1 {
		t.Fatalf("over called %d times, want 1", overs)
	}
}
