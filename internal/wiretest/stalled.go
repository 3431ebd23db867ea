package wiretest

import (
	"fmt"
	"time"
)

// stalledReceiveBuffer is a stalled client's socket receive buffer: small,
// so that the server's writes to a client that stops reading stall soon.
const stalledReceiveBuffer = 4096

// DialStalled connects to addr as a client that stops reading: its socket
// has a small receive buffer (SmallReceiveBuffer) and it sends one request,
// method path with an empty body, of whose answer the test reads little or
// nothing. Its own reads and writes must end within WaitLimit; the caller
// closes it.
func DialStalled(addr, method, path string) (*RawConn, error) {
	d := SmallReceiveBuffer(stalledReceiveBuffer)
	d.Timeout = WaitLimit
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(WaitLimit))
	if _, err := fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n", method, path, addr); err != nil {
		c.Close()
		return nil, err
	}
	return &RawConn{Conn: c}, nil
}
