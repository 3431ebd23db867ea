package netconn

import (
	"io"
	"testing"
	"time"
)

// BenchmarkConnTryWrite is the fan-out's per-connection cost: one small
// frame written without blocking to a loopback socket whose client reads
// everything. Most of it is the kernel's; the rest is what Conn adds.
func BenchmarkConnTryWrite(b *testing.B) {
	server, client := tcpPair(b)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	c := NewConn(server)
	frame := make([]byte, 200)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		flushed, err := c.TryWrite(frame)
		if err != nil {
			b.Fatal(err)
		}
		if !flushed {
			if err := c.Flush(time.Now().Add(time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
	}
}
