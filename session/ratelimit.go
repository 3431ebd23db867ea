package session

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// CommandRate bounds the commands one session may send over WebSocket or
// SockJS: a token bucket of Burst commands that refills at PerSecond. Each
// command in a frame takes one token (a frame that cannot be decoded takes
// one). A command that finds the bucket empty is answered with an `error`
// frame, code 429, and not run. A session that goes on sending after that,
// more than Burst refused commands in a row, is ended with
// DisconnectRateLimited (3008): a client that ignores 429 is abusing the
// connection, not bursting. The zero value is unlimited.
type CommandRate struct {
	PerSecond float64
	Burst     int
}

// validate fills Burst from PerSecond when it is unset and checks the rest.
func (r *CommandRate) validate() error {
	switch {
	case r.PerSecond < 0 || math.IsNaN(r.PerSecond) || math.IsInf(r.PerSecond, 0):
		return fmt.Errorf("session: command rate %v is not a positive number", r.PerSecond)
	case r.Burst < 0:
		return fmt.Errorf("session: negative command burst %d", r.Burst)
	case r.PerSecond > 0 && r.Burst == 0:
		r.Burst = max(1, int(math.Ceil(r.PerSecond)))
	}
	return nil
}

// ErrRateLimited answers a command refused by the session's CommandRate.
var ErrRateLimited = &Error{429, "rate limited: too many commands"}

// The limits counted by LimitMetrics. Other packages add their own names
// (connections per address, publishes per API key…); these are the ones
// session enforces for commands.
const (
	LimitCommands    = "commands"     // a command refused by CommandRate
	LimitChannels    = "channels"     // a subscribe over Limits.MaxChannels
	LimitChannelName = "channel_name" // a subscribe or client publish with an invalid channel name
	// LimitServerChannels counts a subscribe or publish refused because the
	// broker holds its maximum of channels (ErrChannelLimit).
	LimitServerChannels = "server_channels"
)

// LimitMetrics is an optional capability of Metrics, found by type
// assertion: it counts requests refused by a limit, by the limit's name.
// Message size and queue overflows are not reported here: they end the
// session, and Metrics sees them as SessionClosed codes 3501 and 3002.
type LimitMetrics interface {
	Limited(limit string)
}

// channelLimit counts and logs a refusal by the broker's channel cap. The
// warning is written at most once a minute: at the cap, refusals come in
// floods.
func (n *Node) channelLimit(ch string) {
	n.limited(LimitServerChannels)
	now := time.Now().UnixNano()
	last := n.channelLimitLogged.Load()
	if now-last >= int64(time.Minute) && n.channelLimitLogged.CompareAndSwap(last, now) {
		n.log.Warn("channel limit reached: new channels are refused until others end", "channel", ch)
	}
}

func (n *Node) limited(limit string) {
	if m, ok := n.metrics.(LimitMetrics); ok {
		m.Limited(limit)
	}
}

// commandBucket is a session's CommandRate state; guarded by Session.mu.
type commandBucket struct {
	tokens  float64
	last    time.Time
	refused int // refused in a row
	started bool
}

// takeCommand spends one command token. allowed says whether the command may
// run; abusive, that the session has gone on sending past its limit and
// must end.
func (s *Session) takeCommand(now time.Time) (allowed, abusive bool) {
	r := s.node.cfg.CommandRate
	if r.PerSecond <= 0 {
		return true, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.commands
	switch d := now.Sub(b.last); {
	case !b.started:
		b.tokens, b.last, b.started = float64(r.Burst), now, true
	case d > 0:
		b.tokens = min(float64(r.Burst), b.tokens+d.Seconds()*r.PerSecond)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		b.refused = 0
		return true, false
	}
	b.refused++
	return false, b.refused > r.Burst
}

// logBudget is a token bucket for log lines: take says whether a line may
// be written at its level, and how many could not since the last that was.
type logBudget struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time // zero before the first take
	suppressed int
}

func (b *logBudget) take(now time.Time, burst int, rate float64) (ok bool, suppressed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch d := now.Sub(b.last); {
	case b.last.IsZero():
		b.tokens, b.last = float64(burst), now
	case d > 0:
		b.tokens, b.last = min(float64(burst), b.tokens+d.Seconds()*rate), now
	}
	if b.tokens < 1 {
		b.suppressed++
		return false, 0
	}
	b.tokens--
	suppressed, b.suppressed = b.suppressed, 0
	return true, suppressed
}
