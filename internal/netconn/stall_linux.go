//go:build linux

package netconn

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

func applyStallBound(raw syscall.RawConn, b StallBound) error {
	var errs []error
	err := raw.Control(func(fd uintptr) {
		if b.Timeout > 0 {
			ms := int(min(b.Timeout.Milliseconds(), 1<<31-1))
			if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, max(ms, 1)); err != nil {
				errs = append(errs, fmt.Errorf("set TCP_USER_TIMEOUT: %w", err))
			}
		}
		if b.Unsent > 0 {
			if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, b.Unsent); err != nil {
				errs = append(errs, fmt.Errorf("set TCP_NOTSENT_LOWAT: %w", err))
			}
		}
	})
	return errors.Join(err, errors.Join(errs...))
}

// clearStallTimeout puts TCP_USER_TIMEOUT back to the kernel's default.
func clearStallTimeout(raw syscall.RawConn) error {
	var serr error
	err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 0)
	})
	return errors.Join(err, serr)
}

func setLingerZero(raw syscall.RawConn) error { return setLinger(raw, 0) }

// setLinger sets SO_LINGER to sec seconds, or off when sec < 0.
func setLinger(raw syscall.RawConn, sec int) error {
	l := unix.Linger{Onoff: 1, Linger: int32(max(sec, 0))}
	if sec < 0 {
		l = unix.Linger{}
	}
	var serr error
	err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &l)
	})
	return errors.Join(err, serr)
}
