//go:build !linux

package netconn

import (
	"errors"
	"net"
)

// FastPath reports whether this system has TryWrite's direct write to the
// socket (see Conn.Direct). Elsewhere than Linux it is not measured, so
// not taken: TryWrite keeps every byte and Flush writes them through
// net.Conn, under the write deadline.
const FastPath = false

// directFD never finds a descriptor here: every Conn takes the portable
// path.
func directFD(net.Conn) int { return -1 }

// writeNonblock is never called: there is no descriptor to write to.
func writeNonblock(int, []byte) (int, bool, error) {
	return 0, false, errors.ErrUnsupported
}
