//go:build linux

package netconn

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FastPath reports whether this system has TryWrite's direct write to the
// socket (see Conn.Direct). It is measured on Linux only.
const FastPath = true

// directFD returns the descriptor of the socket under c when TryWrite may
// write to it directly, -1 otherwise. Only a non-blocking socket (every
// socket of package net) may be written without the scheduler knowing.
// Every wrapper between net/http and the socket must forward SyscallConn
// for this to find it; Conn.Direct tells whether it did.
func directFD(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	_ = raw.Control(func(s uintptr) {
		if fl, err := unix.FcntlInt(s, unix.F_GETFL, 0); err == nil && fl&unix.O_NONBLOCK != 0 {
			fd = int(s)
		}
	})
	return fd
}

// writeNonblock makes one write(2) of p on the non-blocking socket fd,
// retried on EINTR. again is true when the socket took nothing (EAGAIN).
func writeNonblock(fd int, p []byte) (n int, again bool, err error) {
	for {
		n, err = rawWrite(fd, p)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.EAGAIN {
		return 0, true, nil
	}
	return n, false, err
}

// rawWriteMax is the largest write made without telling the scheduler.
const rawWriteMax = 64 << 10

// rawWrite is write(2) on a non-blocking socket. Small writes skip the
// runtime's system-call bookkeeping (syscall.RawSyscall): the call cannot
// block, and a P marked as in a system call thousands of times a second
// keeps sysmon waking every 20 µs to look at it.
func rawWrite(fd int, p []byte) (int, error) {
	if len(p) > rawWriteMax {
		return syscall.Write(fd, p)
	}
	r, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// RawWrite is the write(2) the fast path makes, for a caller that holds a
// non-blocking descriptor of its own: the bench's floor (S0) measures the
// machine with the same system call the server writes with, and keeps
// RawSyscall in this one package.
func RawWrite(fd int, p []byte) (int, error) { return rawWrite(fd, p) }

// RawRead is read(2) on a non-blocking descriptor without the runtime's
// system-call bookkeeping, the reading side of RawWrite (the floor's
// epoll readers).
func RawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
