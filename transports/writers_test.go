package transports

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/internal/netconn"
)

// A connection that cannot take the fast path where the system has one is
// not silent: the first is logged, once per server, with its type; each
// server has its own Writers, so another server logs its own.
func TestWritersConnLogsSlowPathOnce(t *testing.T) {
	var logs bytes.Buffer
	w := NewWriters(slog.New(slog.NewTextHandler(&logs, nil)))
	for range 3 {
		a, b := net.Pipe()
		if c := w.Conn(a); c.Direct() {
			t.Fatal("a pipe took the fast path")
		}
		a.Close()
		b.Close()
	}
	want := 0
	if netconn.FastPath {
		want = 1
	}
	if got := strings.Count(logs.String(), "slower path"); got != want || (want == 1 && !strings.Contains(logs.String(), "conn=*net.pipe")) {
		t.Fatalf("logged %d times (%q), want %d with the connection's type", got, logs.String(), want)
	}
	if NewWriters(nil) == w || NewWriters(nil).origin.IsZero() {
		t.Fatal("NewWriters does not make a fresh Writers")
	}
}
