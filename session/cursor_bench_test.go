package session

import (
	"fmt"
	"testing"
)

// benchCursor returns a cursor over n channels with realistic names,
// epochs and offsets.
func benchCursor(n int) Cursor {
	c := make(Cursor, n)
	for i := range n {
		c[fmt.Sprintf("orders:%d", 100000+i)] = Position{Epoch: "Xy12ab9Q", Offset: uint64(1000 + i*37)}
	}
	return c
}

// BenchmarkCursorEncode measures building a cursor, which SSE does for
// every event id and long-polling for every answer.
func BenchmarkCursorEncode(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("channels=%d", n), func(b *testing.B) {
			c := benchCursor(n)
			b.ReportAllocs()
			for b.Loop() {
				_ = c.Encode()
			}
		})
	}
}

// BenchmarkCursorDecode measures parsing a cursor, which every poll and
// every SSE resume does.
func BenchmarkCursorDecode(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("channels=%d", n), func(b *testing.B) {
			s := benchCursor(n).Encode()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeCursor(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
