package wiretest

import (
	"crypto/rand"
	"encoding/hex"
)

// SockJSSession is the URL of a new SockJS session under base, the
// endpoint's prefix (http://host/connect/sockjs): server "000" and a random
// session id, to which a client appends its transport ("/websocket",
// "/xhr_streaming", ...). The ids are random so that sessions of parallel
// tests never meet.
func SockJSSession(base string) string {
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	return base + "/000/" + hex.EncodeToString(id[:])
}
