//go:build linux

package netconn

import (
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
// PrefixConn, which must forward SyscallConn). A wrapper that hides the
// socket turns it off, and Direct says so.
func TestDirectOnHijackedConnections(t *testing.T) {
	rl := NewReuseListener(listen(t), time.Minute)
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

	// One keep-alive connection: the second request comes on the socket
	// the handler handed back.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for i, want := range []string{"*net.TCPConn direct=true", "*netconn.PrefixConn direct=true"} {
		resp, err := client.Get("http://" + rl.Addr().String() + "/")
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
