package netconn

import (
	"bytes"
	"net"
	"runtime"
	"syscall"
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
	want := bytes.Repeat([]byte("0123456789abcdef"), 512<<10) // 8 MB
	if flushed, err := c.TryWrite(want); err != nil || flushed {
		t.Fatalf("TryWrite: flushed %v, err %v; want bytes kept", flushed, err)
	}
	// About 3 MB/s: the Flush takes several times its 500 ms deadline, and a
	// reader held up for a while on a busy machine still makes progress
	// within each deadline.
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
	if err := c.Flush(time.Now().Add(500 * time.Millisecond)); err != nil {
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

// Abort drops a connection whose client reads nothing at once, with the
// bytes it never took, where Close would leave the socket in FIN-WAIT-1
// behind them; through the wrappers the server puts around a socket too.
func TestAbortFreesTheSocket(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/net/tcp")
	}
	for _, abort := range []bool{false, true} {
		server, client := tcpPair(t)
		_ = client.(*net.TCPConn).SetReadBuffer(4 << 10)
		c := NewConn(wrapped{server})
		if flushed, err := c.TryWrite(make([]byte, 8<<20)); err != nil || flushed {
			t.Fatalf("TryWrite: flushed %v, err %v; want bytes kept", flushed, err)
		}
		local := server.LocalAddr().(*net.TCPAddr).Port
		if abort {
			_ = Abort(c)
		} else {
			_ = c.Close()
		}
		time.Sleep(100 * time.Millisecond)
		open, err := Sockets(local)
		if err != nil {
			t.Fatal(err)
		}
		st := open[SocketKey(server.RemoteAddr())]
		switch {
		case abort && st != "":
			t.Errorf("after Abort the server's socket is still there, in state %s", st)
		case !abort && st != "FIN-WAIT-1":
			t.Errorf("after Close the server's socket is in state %q, want FIN-WAIT-1", st)
		}
	}
}

// wrapped hides *net.TCPConn as the server's connection wrappers do,
// exposing only the socket.
type wrapped struct{ net.Conn }

func (w wrapped) SyscallConn() (syscall.RawConn, error) {
	return w.Conn.(syscall.Conn).SyscallConn()
}
