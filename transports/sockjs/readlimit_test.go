package sockjs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
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
	c := newLimitConn(server, 100, time.Minute, func() { overs++ }, notTextFrame("x"))
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

// chunkConn is a client stream read at most chunk bytes at a time.
type chunkConn struct {
	net.Conn
	r     *bytes.Reader
	chunk int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.chunk)])
}

func (c *chunkConn) SetReadDeadline(time.Time) error { return nil }

// throughLimitConn reads stream through a limitConn, chunk bytes at a time,
// and returns what gorilla would read and how often the limit tripped.
func throughLimitConn(stream []byte, limit int64, chunk int, notText []byte) ([]byte, int) {
	overs := 0
	c := newLimitConn(&chunkConn{r: bytes.NewReader(stream), chunk: max(chunk, 1)}, limit, time.Minute, func() { overs++ }, notText)
	out, _ := io.ReadAll(c)
	return out, overs
}

// TestLimitConnText: a data message whose payload is not UTF-8 JSON text
// (invalid bytes, a \u escape of a lone surrogate) reaches gorilla as the
// stand-in message, whole and only once its last fragment is in; every other
// frame reaches it unchanged, control frames as they come, and what gorilla
// itself refuses is left for it to refuse.
func TestLimitConnText(t *testing.T) {
	text, cont, bin, ping := byte(1), byte(0), byte(2), byte(9)
	frame := func(fin bool, op byte, payload string) []byte { return wire.ClientFrame(op, fin, []byte(payload)) }
	stand := notTextFrame("stand-in")
	good := frame(true, text, `["{\"type\":\"ping\",\"key\":\"k\ud83d\ude00 é\"}"]`)
	pinged := frame(true, ping, "p")
	rsv := frame(true, text, `["\ud800"]`)
	rsv[0] |= 0x40
	unmasked := append([]byte{0x81, 10}, `["\ud800"]`...)
	tests := []struct {
		name         string
		stream, want []byte
	}{
		{"valid text", good, good},
		{"lone high surrogate escape", frame(true, text, `["k\ud800"]`), stand},
		{"lone low surrogate escape", frame(true, text, `["k\udc00"]`), stand},
		{"high surrogate without its low one", frame(true, text, `["k\ud800\u0041"]`), stand},
		{"invalid byte", frame(true, text, "[\"k\xff\"]"), stand},
		{"truncated UTF-8", frame(true, text, "[\"k\xc3\"]"), stand},
		{"binary message", frame(true, bin, "[\"k\xff\"]"), stand},
		{"escaped backslash is no escape", frame(true, text, `["k\\ud800"]`), frame(true, text, `["k\\ud800"]`)},
		{"between good messages", cat(good, frame(true, text, `["\ud800"]`), good), cat(good, stand, good)},
		{"fragments with a ping between", cat(frame(false, text, `["k\ud8`), pinged, frame(false, cont, `00`), frame(true, cont, `"]`)), cat(pinged, stand)},
		{"good fragments with a ping between", cat(frame(false, text, `["\ud83d`), pinged, frame(true, cont, `\ude00"]`)),
			cat(pinged, frame(false, text, `["\ud83d`), frame(true, cont, `\ude00"]`))},
		{"empty fragments", cat(frame(false, text, ""), frame(false, cont, `["\ud800"]`), frame(true, cont, "")), stand},
		{"reserved bits: left for gorilla", rsv, rsv},
		{"unmasked: left for gorilla", unmasked, unmasked},
		{"continuation of nothing: left for gorilla", frame(true, cont, `["\ud800"]`), frame(true, cont, `["\ud800"]`)},
		{"new message before the last ended: left for gorilla", cat(frame(false, text, `["\ud800`), frame(true, text, `["\ud800"]`)),
			cat(frame(false, text, `["\ud800`), stand)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{len(tt.stream), 1, 3, 7} {
				got, overs := throughLimitConn(tt.stream, 1000, chunk, stand)
				if overs != 0 || !bytes.Equal(got, tt.want) {
					t.Fatalf("read %d at a time: passed on %q (limit tripped %d times), want %q", chunk, got, overs, tt.want)
				}
			}
		})
	}
}

// TestLimitConnFragments: a message of more frames than maxFragments is
// refused as too large, since its headers would be held beyond the limit.
func TestLimitConnFragments(t *testing.T) {
	var stream []byte
	stream = append(stream, wsFrame(false, 1, 0)...)
	for range maxFragments - 2 {
		stream = append(stream, wsFrame(false, 0, 0)...)
	}
	within := cat(stream, wsFrame(true, 0, 1))
	if got, overs := throughLimitConn(within, 100, 4096, nil); overs != 0 || !bytes.Equal(got, within) {
		t.Fatalf("%d frames: limit tripped %d times, passed on %d of %d bytes", maxFragments, overs, len(got), len(within))
	}
	over := cat(stream, wsFrame(false, 0, 0), wsFrame(true, 0, 1))
	if got, overs := throughLimitConn(over, 100, 4096, nil); overs != 1 || len(got) != 0 {
		t.Fatalf("%d frames: limit tripped %d times, passed on %d bytes", maxFragments+1, overs, len(got))
	}
}

// FuzzLimitConn checks that any client stream, read in any chunks, reaches
// gorilla as the same bytes as read whole, with the same verdict.
func FuzzLimitConn(f *testing.F) {
	f.Add(wire.ClientFrame(1, true, []byte(`["\ud800"]`)), uint16(100), uint8(1))
	f.Add(cat(wire.ClientFrame(1, false, []byte(`["\ud8`)), wsFrame(true, 9, 1), wire.ClientFrame(0, true, []byte(`00"]`))), uint16(100), uint8(3))
	f.Add(cat(wsFrame(true, 1, 10), wsFrame(true, 2, 200)), uint16(100), uint8(7))
	stand := notTextFrame("stand-in")
	f.Fuzz(func(t *testing.T, stream []byte, limit uint16, chunk uint8) {
		whole, wholeOvers := throughLimitConn(stream, int64(limit), len(stream), stand)
		got, overs := throughLimitConn(stream, int64(limit), int(chunk), stand)
		if overs != wholeOvers || !bytes.Equal(got, whole) {
			t.Fatalf("chunks of %d: %q (tripped %d); whole: %q (tripped %d)", chunk, got, overs, whole, wholeOvers)
		}
		if overs > 1 {
			t.Fatalf("limit tripped %d times", overs)
		}
	})
}

// BenchmarkLimitConn reads a stream of 1,000 commands of about 100 bytes,
// one message each as sockjs-client sends them, through a limitConn (which
// holds, unmasks and checks each) and, for comparison, through the frame
// limiter alone, which is all it did before.
func BenchmarkLimitConn(b *testing.B) {
	msg := wire.ClientFrame(1, true, []byte(`["{\"type\":\"publish\",\"id\":12,\"channel\":\"chat:lobby\",\"data\":{\"text\":\"hello, world é\"},\"key\":\"k-12\"}"]`))
	stream := bytes.Repeat(msg, 1000)
	p := make([]byte, 1024) // gorilla's read buffer
	read := func(b *testing.B, r io.Reader) {
		for {
			if _, err := r.Read(p); err != nil {
				if !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
				return
			}
		}
	}
	b.Run("limitConn", func(b *testing.B) {
		b.SetBytes(int64(len(stream)))
		b.ReportAllocs()
		for b.Loop() {
			read(b, newLimitConn(&chunkConn{r: bytes.NewReader(stream), chunk: 1024}, 1<<20, time.Minute, func() {}, notTextFrame("x")))
		}
	})
	b.Run("limit only", func(b *testing.B) { // what limitConn did before it checked text
		b.SetBytes(int64(len(stream)))
		b.ReportAllocs()
		for b.Loop() {
			f := frameLimiter{limit: 1 << 20}
			for chunk := range slices.Chunk(stream, 1024) {
				if _, over := f.feed(chunk); over {
					b.Fatal("over")
				}
			}
		}
	})
}
