//go:build !unix

package wiretest

import (
	"errors"
	"net"
	"syscall"
)

// SmallReceiveBuffer is a dialer whose sockets have a small receive buffer;
// only Unix systems have one here, so elsewhere dialing fails and the
// stalled-client tests say why.
func SmallReceiveBuffer(int) *net.Dialer {
	return &net.Dialer{Control: func(string, string, syscall.RawConn) error {
		return errors.New("wiretest: a small receive buffer needs a Unix system")
	}}
}
