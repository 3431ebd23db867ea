//go:build windows

package bench

import "syscall"

// setRcvBuf sets SO_RCVBUF on a socket before it connects, so that the
// window it advertises is small from the first segment.
func setRcvBuf(c syscall.RawConn, n int) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
	}); err != nil {
		return err
	}
	return serr
}
