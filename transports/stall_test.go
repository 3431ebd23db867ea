package transports

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// A Flush to a client that reads slowly but keeps reading goes on past its
// write deadline for as long as the client takes bytes: the deadline bounds
// a stretch without progress, not the whole batch. A client that stops
// reading still fails it.
func TestConnFlushDeadlineIsWriteProgress(t *testing.T) {
	server, client := tcpPair(t)
	// Buffers well above loopback's 64 KB segment, so that a reading
	// client's window opens in whole segments.
	_ = server.(*net.TCPConn).SetWriteBuffer(128 << 10)
	_ = client.(*net.TCPConn).SetReadBuffer(128 << 10)
	c := NewConn(server)
	want := bytes.Repeat([]byte("0123456789abcdef"), 128<<10) // 2 MB
	if flushed, err := c.TryWrite(want); err != nil || flushed {
		t.Fatalf("TryWrite: flushed %v, err %v; want bytes kept", flushed, err)
	}
	// About 3 MB/s: the Flush takes several times its 100 ms deadline.
	got := make(chan []byte)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 64<<10)
		for b.Len() < len(want) {
			n, err := client.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		got <- b.Bytes()
	}()
	start := time.Now()
	if err := c.Flush(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatalf("Flush to a slow reader failed after %v: %v", time.Since(start), err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("client read %d bytes, want the %d written", len(b), len(want))
	}

	// Now the client stops reading: the next Flush fails.
	if flushed, err := c.TryWrite(want); err != nil || flushed {
		t.Fatalf("TryWrite: flushed %v, err %v; want bytes kept", flushed, err)
	}
	err := c.Flush(time.Now().Add(100 * time.Millisecond))
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("Flush to a stalled reader: %v, want a timeout", err)
	}
}
