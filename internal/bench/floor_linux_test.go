package bench

import (
	"slices"
	"testing"
)

// TestFloorConsume feeds three frames to a reader in every chunk size: each
// payload comes out once, in order, however the reads split the frames.
func TestFloorConsume(t *testing.T) {
	var stream []byte
	for seq := int64(1); seq <= 3; seq++ {
		stream = append(stream, floorFrame(make([]byte, 256), seq, 1000*seq)...)
	}
	if n := floorFrameLen(stream); n < 126 || n >= len(stream) {
		t.Fatalf("frame length %d: want the 16-bit form, shorter than the stream of %d bytes", n, len(stream))
	}
	for chunk := 1; chunk <= len(stream); chunk++ {
		var p floorPair
		var got []int64
		for b := range slices.Chunk(stream, chunk) {
			p.consume(b, func(seq, ts int64) {
				if ts != 1000*seq {
					t.Errorf("chunk %d: seq %d carries time %d", chunk, seq, ts)
				}
				got = append(got, seq)
			})
		}
		if !slices.Equal(got, []int64{1, 2, 3}) || len(p.part) != 0 {
			t.Fatalf("chunk %d: payloads %v, %d bytes left over; want [1 2 3], none", chunk, got, len(p.part))
		}
	}
}
