//go:build linux

package netconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// deadlineConn counts the write deadlines that reach the connection.
type deadlineConn struct {
	net.Conn
	mu      sync.Mutex
	applied []time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.applied = append(c.applied, t)
	c.mu.Unlock()
	return nil
}

// A connection written to in a burst renews its write deadline once, not
// once per write; an earlier deadline, a much later one and the zero
// deadline always take effect.
func TestConnLazyWriteDeadline(t *testing.T) {
	dc := &deadlineConn{}
	c := NewConn(dc)
	now := time.Now()
	for i := range 1000 {
		if err := c.SetWriteDeadline(now.Add(10*time.Second + time.Duration(i)*time.Microsecond)); err != nil {
			t.Fatal(err)
		}
	}
	if len(dc.applied) != 1 {
		t.Fatalf("1000 writes in a burst applied %d deadlines, want 1", len(dc.applied))
	}
	steps := []struct {
		name string
		t    time.Time
	}{
		{"earlier", now.Add(time.Second)},
		{"later than 4/3 of what is left", now.Add(time.Minute)},
		{"zero", time.Time{}},
		{"set again after zero", now.Add(time.Minute)},
	}
	for i, st := range steps {
		if err := c.SetWriteDeadline(st.t); err != nil {
			t.Fatal(err)
		}
		if got := dc.applied[len(dc.applied)-1]; len(dc.applied) != i+2 || !got.Equal(st.t) {
			t.Fatalf("%s: deadline in force %v after %d applied, want %v", st.name, got, len(dc.applied), st.t)
		}
	}
}

// TryWrite to a client that reads nothing returns at once with what the
// socket did not take kept; Flush and later writes deliver every byte, once,
// in order, once the client reads.
func TestConnTryWriteNeverBlocks(t *testing.T) {
	// Writes of up to rawWriteMax are raw system calls, larger ones
	// syscall.Write: both must behave the same.
	for _, size := range []int{rawWriteMax, rawWriteMax + 1} {
		t.Run(fmt.Sprintf("%d bytes", size), func(t *testing.T) { testTryWriteNeverBlocks(t, size) })
	}
}

func testTryWriteNeverBlocks(t *testing.T, size int) {
	server, client := tcpPair(t)
	c := NewConn(server)
	if c.fd < 0 {
		t.Fatal("a TCP connection has no raw socket")
	}
	var want bytes.Buffer
	chunk := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	kept := false
	for i := 0; i < 256 && !kept; i++ { // up to 16 MB: more than any socket buffer
		chunk[0] = byte(i)
		start := time.Now()
		flushed, err := c.TryWrite(chunk)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("TryWrite waited %v", d)
		}
		want.Write(chunk)
		kept = !flushed
	}
	if !kept {
		t.Fatal("16 MB to a client that reads nothing never filled the socket")
	}
	got := receive(client)
	if err := c.Flush(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	want.WriteString("after")
	got.expect(t, server, want.Bytes())
}

// TryWrite does not wait for a writer that holds the connection (one
// blocked on a client that reads nothing): it keeps its bytes, and Flush
// writes them after that writer's.
func TestConnTryWriteDoesNotWaitForAWriter(t *testing.T) {
	server, client := tcpPair(t)
	c := NewConn(server)
	// Fill the socket, then leave a blocking Write waiting on it.
	var want bytes.Buffer
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for {
		flushed, err := c.TryWrite(chunk)
		if err != nil {
			t.Fatal(err)
		}
		want.Write(chunk)
		if !flushed {
			break
		}
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("blocked"))
		blocked <- err
	}()
	for c.mu.TryLock() { // until the Write holds the connection
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	flushed, err := c.TryWrite([]byte("tried"))
	if err != nil || flushed {
		t.Fatalf("TryWrite behind a blocked writer: flushed %v, %v; want kept", flushed, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("TryWrite waited %v for the blocked writer", d)
	}
	want.WriteString("blocked")
	want.WriteString("tried")
	got := receive(client)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got.expect(t, server, want.Bytes())
}

// A write deadline that passed while the connection was idle does not fail
// the next TryWrite: the deadline it is given takes over.
func TestConnTryWriteAfterIdle(t *testing.T) {
	server, client := tcpPair(t)
	c := NewConn(server)
	if err := c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if flushed, err := c.TryWrite([]byte("late")); err != nil || !flushed {
		t.Fatalf("TryWrite after an idle past the deadline: flushed %v, %v", flushed, err)
	}
	buf := make([]byte, 4)
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "late" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// A connection without a socket (a pipe) keeps everything TryWrite is
// given, for Flush to write.
func TestConnTryWriteWithoutSocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := NewConn(a)
	flushed, err := c.TryWrite([]byte("kept"))
	if err != nil || flushed {
		t.Fatalf("TryWrite on a pipe: flushed %v, %v; want kept", flushed, err)
	}
	go func() { _ = c.Flush(time.Now().Add(time.Minute)) }()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "kept" {
		t.Fatalf("read %q, %v after Flush", buf, err)
	}
}

// After Close, TryWrite fails and writes nothing, even to a connection that
// was given the closed socket's number: it writes by number, so a write
// racing Close must not reach whoever holds that number next.
func TestConnTryWriteAfterClose(t *testing.T) {
	server, _ := tcpPair(t)
	c := NewConn(server)
	fd := c.fd
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Dial until a socket reuses the closed number (the kernel hands out
	// the lowest free one, so it is usually the first).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var victimPeer net.Conn
	for range 16 {
		d, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close(); a.Close() })
		if NewConn(d).fd == fd {
			victimPeer = a
			break
		}
	}
	if victimPeer == nil {
		t.Fatalf("no new socket reused number %d", fd)
	}
	flushed, err := c.TryWrite([]byte("stray"))
	if !errors.Is(err, net.ErrClosed) || flushed {
		t.Fatalf("TryWrite after Close: flushed %v, %v; want net.ErrClosed", flushed, err)
	}
	_ = victimPeer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := victimPeer.Read(make([]byte, 8)); n != 0 {
		t.Fatalf("the socket that reused number %d received %d bytes", fd, n)
	}
}

// blockingConn is a connection whose descriptor is in blocking mode, as a
// net.Conn built by hand over a file may be.
type blockingConn struct {
	net.Conn
	f *os.File
}

func (c blockingConn) SyscallConn() (syscall.RawConn, error) { return c.f.SyscallConn() }

// TryWrite writes to a socket without the scheduler knowing, which only a
// socket that cannot block allows: a blocking one is left to Flush.
func TestConnTryWriteBlockingSocket(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "blocking")
	peer := os.NewFile(uintptr(fds[1]), "peer")
	defer f.Close()
	defer peer.Close()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := NewConn(blockingConn{Conn: a, f: f})
	if c.fd >= 0 {
		t.Fatalf("a blocking descriptor was taken for non-blocking writes (fd %d)", c.fd)
	}
	if flushed, err := c.TryWrite([]byte("kept")); err != nil || flushed {
		t.Fatalf("TryWrite on a blocking socket: flushed %v, %v; want kept", flushed, err)
	}
	server, _ := tcpPair(t)
	if NewConn(server).fd < 0 {
		t.Fatal("a TCP connection of package net was not taken for non-blocking writes")
	}
}
