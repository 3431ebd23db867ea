//go:build linux

package server

import (
	"net"
	"testing"

	"github.com/waterspout/waterspout/internal/netconn"
)

// The connection a transport gets from the server's Hijack (releaseConn,
// around the listener's socket) keeps the fast path: it forwards
// SyscallConn, without which every delivery would fall back to a blocking
// Flush on a goroutine of its own.
func TestHijackedConnTakesFastPath(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if !netconn.NewConn(&releaseConn{Conn: server, release: func() {}}).Direct() {
		t.Fatal("a hijacked releaseConn does not take the fast path")
	}
}
