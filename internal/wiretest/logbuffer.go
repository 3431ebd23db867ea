package wiretest

import "github.com/waterspout/waterspout/internal/testlog"

// LogBuffer is a goroutine-safe writer: a server's logs (or a command's
// output) written from its goroutines, read by the test (testlog.Buffer).
type LogBuffer = testlog.Buffer
