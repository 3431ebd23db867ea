// Package testlog holds Buffer, the goroutine-safe writer tests give a
// server or a child process for its logs and read back. It imports nothing
// of the project, so that the test kits of every layer (session's
// brokertest as well as the transports' wiretest) can share it without one
// layer's kit depending on another's.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a goroutine-safe writer: logs (or a command's output) written
// from other goroutines, read by the test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
