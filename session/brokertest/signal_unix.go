//go:build unix

package brokertest

import "syscall"

// sigStop and sigCont pause and resume a redis-server (Pause, Resume).
var sigStop, sigCont = syscall.SIGSTOP, syscall.SIGCONT
