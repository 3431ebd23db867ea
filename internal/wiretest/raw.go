package wiretest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
)

// RawConn is a TCP connection to a test server on which the test speaks
// HTTP/1.1 by hand, for what a client library will not do: pipelined
// requests, a body that must not be taken for a request, an HTTP/1.0
// stream, a WebSocket handshake or frame cut anywhere, thousands of idle
// clients that hold no goroutine.
type RawConn struct {
	net.Conn
	// br is made on the first read, so that a held connection that is
	// never read costs the test process no buffer.
	br *bufio.Reader
}

// DialRaw connects to addr ("127.0.0.1:port"). Every read and write on
// the connection must end within WaitLimit; the caller closes it.
func DialRaw(addr string) (*RawConn, error) {
	c, err := net.DialTimeout("tcp", addr, WaitLimit)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(WaitLimit))
	return &RawConn{Conn: c}, nil
}

// Reader is the buffered reader of everything the server sends.
func (c *RawConn) Reader() *bufio.Reader {
	if c.br == nil {
		c.br = bufio.NewReader(c.Conn)
	}
	return c.br
}

// Answer reads one HTTP answer and its whole body. The answer is nil when
// its header could not be read.
func (c *RawConn) Answer() (*http.Response, string, error) {
	resp, err := http.ReadResponse(c.Reader(), nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// UpgradeWS sends a WebSocket handshake for path and reads the server's
// 101 answer. What the server sends next is read by ReadFrame.
func (c *RawConn) UpgradeWS(path string) error {
	_, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", path, c.RemoteAddr())
	if err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.Reader(), nil)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("handshake answered %s", resp.Status)
	}
	return nil
}

// ReadFrame reads one WebSocket frame from the server: its opcode and
// payload.
func (c *RawConn) ReadFrame() (op byte, payload []byte, err error) {
	return wire.ReadServerFrame(c.Reader())
}
