//go:build linux

package netconn

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// The connections the transports really write to take the fast path: what
// net/http's Hijack returns, on a fresh connection (*net.TCPConn) and on
// one the ReuseListener handed back for the client's next request (a
// prefixConn, which must forward SyscallConn). A wrapper that hides the
// socket turns it off, and Direct says so.
func TestDirectOnHijackedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := NewReuseListener(ln, time.Minute)
	direct := make(chan string, 2)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		c := NewConn(conn)
		direct <- fmt.Sprintf("%T direct=%v", conn, c.Direct())
		body := "ok"
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + body))
		buffered, _ := brw.Reader.Peek(brw.Reader.Buffered())
		rl.Reuse(conn, append([]byte(nil), buffered...))
	})}
	go func() { _ = srv.Serve(rl) }()
	defer srv.Close()

	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	br := bufio.NewReader(client)
	for i, want := range []string{"*net.TCPConn direct=true", "*netconn.prefixConn direct=true"} {
		if _, err := io.WriteString(client, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := <-direct; got != want {
			t.Errorf("request %d: %s, want %s", i, got, want)
		}
	}

	server, _ := tcpPair(t)
	if c := NewConn(hidden{server}); c.Direct() {
		t.Error("a wrapper without SyscallConn took the fast path")
	}
	if !NewConn(wrapped{server}).Direct() {
		t.Error("a wrapper that forwards SyscallConn lost the fast path")
	}
}

// hidden is a wrapper that does not forward SyscallConn.
type hidden struct{ net.Conn }
