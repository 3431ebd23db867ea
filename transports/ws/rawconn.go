package ws

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/internal/wsframe"
	"github.com/waterspout/waterspout/transports"
)

// An idle connection's one goroutine is its reader, and most of what an idle
// connection costs is that goroutine's stack: parked inside gorilla's
// NextReader it needs 4 KB, parked in a plain Read 2 KB. So the reader waits
// for the client's next bytes itself, in a shallow call, whenever gorilla
// has nothing buffered, and hands what it read to gorilla through rawConn.
// The bare pongs that answer our pings are the only thing an idle client
// sends; the reader takes those itself, so it goes back to waiting without
// entering gorilla at all.

// rawConn is the connection gorilla reads from: it first returns the bytes
// the reader's wait took off the socket (Pending), then reads the socket.
// Only the reader goroutine touches Pending. Its Conn is a *netconn.Conn,
// which every server frame goes through.
type rawConn struct {
	netconn.PrefixConn
	buf       [8]byte
	closeSent atomic.Bool // gorilla wrote its close frame (protocol error)
}

// Write is gorilla's only write once the handshake is done: its own close
// frame on a protocol error (every other server frame goes to the
// netconn.Conn directly, see write.go). It notes that close frame, after
// which the server sends nothing more.
func (c *rawConn) Write(p []byte) (int, error) {
	if len(p) > 0 && p[0] == 0x80|wsframe.OpClose {
		c.closeSent.Store(true)
	}
	return c.Conn.Write(p)
}

// await blocks until the client sends something other than bare pongs and
// leaves it pending for gorilla; a bare pong just shows the client is alive.
// It must only run when gorilla has nothing buffered and is between
// messages, and it returns the socket's error (EOF, a reset, the read
// deadline) as it is.
func (c *conn) await() error {
	for {
		n, err := c.raw.Conn.Read(c.raw.buf[:])
		if n > 0 {
			if wsframe.IsBareClientPong(c.raw.buf[:n]) {
				c.alive()
				continue
			}
			c.raw.Pending = c.raw.buf[:n]
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// hijacker gives gorilla's Upgrade a rawConn and a read buffer this package
// can see: gorilla reads through a hijacked bufio.Reader of more than 256
// bytes when the Upgrader's ReadBufferSize is 0, and the reader may only
// wait on the socket when that buffer is empty.
type hijacker struct {
	http.ResponseWriter
	raw     *rawConn
	br      *bufio.Reader
	writers *transports.Writers // wraps the hijacked connection
}

func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return c, brw, err // gorilla refuses a client that sent data before the handshake's end
	}
	// A WebSocket proves its client alive with pongs and closes a silent
	// one with 3005 after the pong wait: the accept-time stall timeout would
	// preempt that rule, so it is taken off (the unsent-bytes bound stays).
	_ = netconn.ClearStallTimeout(c)
	h.raw = &rawConn{PrefixConn: netconn.PrefixConn{Conn: h.writers.Conn(c)}}
	h.br = bufio.NewReaderSize(h.raw, readBufferSize)
	return h.raw, bufio.NewReadWriter(h.br, brw.Writer), nil
}
