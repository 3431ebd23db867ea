//go:build unix

package wiretest

import (
	"errors"
	"net"
	"syscall"
)

// SmallReceiveBuffer is a dialer whose sockets have a receive buffer of
// size bytes, set before they connect: a client that stops reading then
// fills the server's socket, and stalls its writes, quickly.
func SmallReceiveBuffer(size int) *net.Dialer {
	return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		})
		return errors.Join(err, serr)
	}}
}
