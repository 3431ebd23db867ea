//go:build !unix

package brokertest

import "os"

// Without job-control signals Pause and Resume fail the test (Windows
// delivers no os.Interrupt to a process): the tests that use them run on
// Unix.
var sigStop, sigCont os.Signal = os.Interrupt, os.Interrupt
