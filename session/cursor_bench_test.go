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

// BenchmarkCursorNamesAny measures the server's poll budget check, which
// every continuing poll passes before the handler decodes its cursor. The
// channel it looks for is the cursor's last.
func BenchmarkCursorNamesAny(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("channels=%d", n), func(b *testing.B) {
			s := benchCursor(n).Encode()
			want := []string{fmt.Sprintf("orders:%d", 100000+n-1)}
			b.ReportAllocs()
			for b.Loop() {
				if !CursorNamesAny(s, want) {
					b.Fatal("channel not found")
				}
			}
		})
	}
}

// BenchmarkCursorNamesAnyWorst is the most a request can make the check
// compare: a cursor of MaxCursorChannels names and as many channels, none
// of them named, all of one length (so every comparison reads the bytes).
func BenchmarkCursorNamesAnyWorst(b *testing.B) {
	c := make(Cursor, MaxCursorChannels)
	chans := make([]string, MaxCursorChannels)
	for i := range MaxCursorChannels {
		c[fmt.Sprintf("c%03d", i)] = Position{Epoch: "e", Offset: 1}
		chans[i] = fmt.Sprintf("d%03d", i)
	}
	s := c.Encode()
	b.ReportAllocs()
	for b.Loop() {
		if CursorNamesAny(s, chans) {
			b.Fatal("a channel found")
		}
	}
}
