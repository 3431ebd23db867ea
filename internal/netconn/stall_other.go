//go:build !linux

package netconn

import "syscall"

// Elsewhere the bounds are not set: the write deadline and the session
// queue are what bound a stalled client.
func applyStallBound(syscall.RawConn, StallBound) error { return nil }

func clearStallTimeout(syscall.RawConn) error { return nil }

// setLingerZero and setLinger are not done here: the close stays graceful.
func setLingerZero(syscall.RawConn) error { return nil }

func setLinger(syscall.RawConn, int) error { return nil }
