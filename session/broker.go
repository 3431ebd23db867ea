package session

import (
	"context"
	"encoding/json"
	"time"
)

// Broker stores channel histories and carries publications between nodes.
// The memory broker serves one process; a Redis broker (package session/redis)
// serves many. Both pass the same conformance suite (brokertest).
type Broker interface {
	// Publish assigns the channel's next offset and appends to its history in
	// one atomic step, then delivers the publication to every node subscribed
	// to the channel. A repeated Key within the idempotency window returns the
	// original publication with Duplicate set and delivers nothing.
	Publish(ctx context.Context, channel string, data json.RawMessage, opts PublishOptions) (PublishResult, error)
	// Subscribe makes this node receive the channel's publications. It returns
	// once delivery is in place, so a history read after it misses nothing.
	Subscribe(ctx context.Context, channel string) error
	// Unsubscribe stops delivery of the channel to this node.
	Unsubscribe(ctx context.Context, channel string) error
	// History returns the channel's current position and, when q.Since is set
	// and still covered by history, the publications after it.
	History(ctx context.Context, channel string, q HistoryQuery) (HistoryResult, error)
	// SetHandler sets where delivered publications go. The node calls it once,
	// before any Subscribe.
	SetHandler(h BrokerHandler)
}

// MaxBrokerEpochLen is the longest epoch a Broker may produce, in bytes of
// [A-Za-z0-9_-]. It keeps cursors short (see CheckCursorFits).
const MaxBrokerEpochLen = 16

// NewEpoch returns a fresh random epoch of 8 URL-safe characters, well
// within MaxBrokerEpochLen: what a Broker gives a channel whose history
// starts (again). The memory and the Redis broker both take theirs here.
func NewEpoch() string { return randomText(6) }

// BrokerHandler receives what a broker delivers to this node. Calls for one
// channel are made in offset order and never concurrently.
type BrokerHandler interface {
	HandlePublication(p *Publication)
	// HandleGap reports that live delivery of the channel may have missed
	// publications (for example a broker connection dropped); the node makes
	// its sessions resume from history.
	HandleGap(channel string)
}

// PublishOptions are per-publication settings, usually from the namespace.
type PublishOptions struct {
	Key         string        // idempotency key; "" for none
	HistorySize int           // publications kept; 0 keeps none
	HistoryTTL  time.Duration // how long a publication is kept
	KeyTTL      time.Duration // how long Key is remembered (at least HistoryTTL)
}

// PublishResult is the outcome of Publish.
type PublishResult struct {
	*Publication
	Duplicate bool // Key was seen before; this is the original publication
}

// HistoryQuery selects publications after a position.
type HistoryQuery struct {
	Since *Position // nil: all retained publications (when Limit allows)
	Limit int       // at most this many publications; 0 means none, <0 means all
}

// HistoryResult is what History returns.
type HistoryResult struct {
	Top          Position       // the channel's current position
	Publications []*Publication // after Since, oldest first
	// Recoverable is true when Since is in the current epoch and every
	// publication after it is still retained (all of them are returned when
	// Limit allows).
	Recoverable bool
}

// Readier is implemented by brokers that can report health (for /readyz).
type Readier interface {
	Ready(ctx context.Context) error
}
