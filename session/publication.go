package session

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
)

// Publication is one message in a channel's history. Offset grows by exactly
// one per publication of a channel; Epoch names one continuous history and
// changes when continuity is lost.
type Publication struct {
	Channel string
	Offset  uint64
	Epoch   string
	Data    json.RawMessage
	Key     string // publisher's idempotency key, if any
	Time    int64  // Unix milliseconds when the broker accepted it

	frame atomic.Pointer[[]byte] // the encoded `message` frame, made once
}

// Position is a place in a channel's history: the last offset seen within an epoch.
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// Frame returns the publication's `message` frame. It is encoded once and
// shared by every subscriber, on every transport.
func (p *Publication) Frame() []byte {
	if f := p.frame.Load(); f != nil {
		return *f
	}
	f, err := json.Marshal(messageFrame{
		Type: "message", Channel: p.Channel, Offset: p.Offset, Epoch: p.Epoch,
		Data: p.Data, Key: p.Key, Time: p.Time,
	})
	if err != nil {
		// Data was validated as JSON when it was published; a failure here is a bug.
		panic(fmt.Sprintf("session: encode publication %s/%d: %v", p.Channel, p.Offset, err))
	}
	p.frame.Store(&f)
	return f
}

// Position returns the publication's position.
func (p *Publication) Position() Position { return Position{p.Epoch, p.Offset} }
