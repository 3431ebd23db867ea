//go:build !unix

package bench

import "time"

// selfCPU is 0 where getrusage(2) does not exist: the report then shows no
// load-generator CPU rather than a wrong one.
func selfCPU() time.Duration { return 0 }

// RaiseFileLimit has nothing to raise where there is no RLIMIT_NOFILE; 0
// means "unknown" in the report.
func RaiseFileLimit() (uint64, error) { return 0, nil }
