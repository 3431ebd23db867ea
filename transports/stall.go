package transports

import (
	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/session"
)

var _ Reuser = (*netconn.ReuseListener)(nil)

// GaveUp reports whether a session that ended with d was given up on because
// its client did not keep up: its queue overflowed, a write timed out, or it
// went silent. Its connection is then aborted rather than closed, unless the
// disconnect frame goes into the socket at once.
func GaveUp(d session.Disconnect) bool {
	switch d {
	case session.DisconnectSlow, session.DisconnectWriteTimeout, session.DisconnectStale:
		return true
	}
	return false
}
