//go:build !unix && !windows

package bench

import (
	"errors"
	"syscall"
)

// setRcvBuf cannot shrink a receive buffer here: the scenarios that need
// a slow reader (slow, stalled) fail to dial instead of measuring wrongly.
func setRcvBuf(syscall.RawConn, int) error {
	return errors.New("SO_RCVBUF is not supported on this system")
}
