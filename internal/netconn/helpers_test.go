package netconn

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// listen returns a TCP listener on a free loopback port.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// tcpPair is a connected pair of loopback TCP connections, closed when t ends.
func tcpPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	ln := listen(t)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// received is what a client end of tcpPair read, until the server end
// closed.
type received chan []byte

// receive reads everything client gets, in the background.
func receive(client net.Conn) received {
	r := make(received, 1)
	go func() {
		b, _ := io.ReadAll(client)
		r <- b
	}()
	return r
}

// expect closes server and fails the test unless the client got want: every
// byte, once, in order.
func (r received) expect(t *testing.T, server net.Conn, want []byte) {
	t.Helper()
	server.Close()
	if b := <-r; !bytes.Equal(b, want) {
		t.Fatalf("client read %d bytes, want %d in order", len(b), len(want))
	}
}
