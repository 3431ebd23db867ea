//go:build !linux

package multinode

import "syscall"

// childAttr returns nil: only Linux can tie a child's life to its parent; the
// tests still kill every process in t.Cleanup.
func childAttr() *syscall.SysProcAttr { return nil }
