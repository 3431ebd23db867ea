//go:build unix

package bench

import (
	"fmt"
	"syscall"
	"time"
)

// selfCPU returns the load generator's own CPU time, to show how much of
// the shared machine it took.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RaiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit and returns
// the new soft limit: every client connection is a file descriptor.
func RaiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("get file limit: %w", err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, fmt.Errorf("raise file limit to %d: %w", rl.Max, err)
		}
	}
	return uint64(rl.Cur), nil //nolint:unconvert // int64 on FreeBSD
}
