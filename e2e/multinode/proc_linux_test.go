package multinode

import "syscall"

// childAttr makes the kernel kill a child process when the test binary dies
// (a panic, a timeout), so that no node, Redis or haproxy outlives it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
