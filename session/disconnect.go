package session

import "fmt"

// Disconnect is why the server ended a session. It travels as a `disconnect`
// frame on every transport and, on WebSocket, as the close code and reason.
//
// Codes live in three ranges, so a client can act on a code it does not know:
//
//	3000–3499  the client should reconnect (with backoff) and resume
//	3500–3999  terminal: reconnecting with the same input fails again
//	4000–4999  reserved for applications
type Disconnect struct {
	Code      int    `json:"code"`
	Reason    string `json:"reason"`
	Reconnect bool   `json:"reconnect"`
}

// Error lets a Disconnect be returned where an error is expected.
func (d Disconnect) Error() string {
	return fmt.Sprintf("disconnect %d: %s", d.Code, d.Reason)
}

// The disconnect codes. This table is mirrored in client-js/src/codes.ts and
// documented in docs/PROTOCOL.md; change all three together.
var (
	// DisconnectShutdown: the node is going away; reconnect now (after a short
	// random delay so a deploy does not cause a stampede).
	DisconnectShutdown = Disconnect{3001, "shutdown", true}
	// DisconnectSlow: the client did not read fast enough and its queue overflowed.
	DisconnectSlow = Disconnect{3002, "slow consumer", true}
	// DisconnectInsufficientState: the server saw a gap in live delivery; the
	// client reconnects with its positions and recovers from history.
	DisconnectInsufficientState = Disconnect{3003, "insufficient state", true}
	// DisconnectWriteTimeout: a write to the client did not finish in time.
	DisconnectWriteTimeout = Disconnect{3004, "write timeout", true}
	// DisconnectStale: no pong or other traffic from the client within the deadline.
	DisconnectStale = Disconnect{3005, "stale connection", true}
	// DisconnectInternal: a server-side failure (for example the broker is unreachable).
	DisconnectInternal = Disconnect{3006, "internal error", true}
	// DisconnectTokenExpired: the connection token expired and no fresh one was sent.
	DisconnectTokenExpired = Disconnect{3007, "token expired", true}
	// DisconnectRateLimited: too many commands, connects or connections; back off.
	DisconnectRateLimited = Disconnect{3008, "rate limited", true}

	// DisconnectBadRequest: a frame that is not a valid command.
	DisconnectBadRequest = Disconnect{3500, "bad request", false}
	// DisconnectMessageTooLarge: an incoming frame exceeded limits.maxMessageBytes.
	DisconnectMessageTooLarge = Disconnect{3501, "message too large", false}
	// DisconnectInvalidToken: the connection token is malformed, badly signed or not yet valid.
	DisconnectInvalidToken = Disconnect{3502, "invalid token", false}
	// DisconnectForbidden: the origin or the credentials are not allowed here.
	DisconnectForbidden = Disconnect{3503, "forbidden", false}
	// DisconnectByServer: a backend ended the user's connections (POST
	// /api/disconnect); the client does not reconnect on its own.
	DisconnectByServer = Disconnect{3504, "disconnected by the server", false}
)

// Reasons a connection ended that are never sent (the client ended it), for
// Session.Close and the close-code label of metrics. Their codes are the
// WebSocket ones every transport can map to.
var (
	ClosedByClient = Disconnect{1000, "client closed", false}
	ConnectionLost = Disconnect{1006, "connection lost", true}
)

// Disconnects lists every code, for docs, tests and the client mirror check.
var Disconnects = []Disconnect{
	DisconnectShutdown, DisconnectSlow, DisconnectInsufficientState, DisconnectWriteTimeout,
	DisconnectStale, DisconnectInternal, DisconnectTokenExpired, DisconnectRateLimited,
	DisconnectBadRequest, DisconnectMessageTooLarge, DisconnectInvalidToken, DisconnectForbidden,
	DisconnectByServer,
}
