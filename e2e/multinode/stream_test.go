package multinode

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
)

// frame is any server frame, decoded as docs/PROTOCOL.md describes it.
type frame = wire.Frame

// payload is the data of every publication in these tests.
type payload struct {
	N int `json:"n"`
}

type position struct {
	epoch  string
	offset uint64
}

type delivery struct {
	n   int
	pos position
	at  time.Time
}

type subscribed struct {
	pos       position
	recovered *bool
	at        time.Time
}

type loss struct {
	at     time.Time
	reason string
}

// stream is what one client saw on one channel. The client feeds it frames;
// it checks, as a client must, that each message follows the position it
// holds (the same epoch, the next offset) and records anything else as a
// problem: a duplicate, or a silent gap. Only a subscribed frame moves the
// position elsewhere, which is how the server announces recovery or its
// failure.
type stream struct {
	name    string
	channel string

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every change
	pos        position
	positioned bool
	got        []delivery
	seen       map[position]bool
	subs       []subscribed
	losses     []loss
	disconnect []frame
	problems   []string
	requests   map[string]int // by target URL, for clients that pick one per request
}

func newStream(name, channel string) *stream {
	return &stream{name: name, channel: channel, changed: make(chan struct{}),
		seen: map[position]bool{}, requests: map[string]int{}}
}

func (s *stream) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *stream) problemf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
	s.notifyLocked()
}

// since returns the position to resume from, if the client has one.
func (s *stream) since() (position, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos, s.positioned
}

// onFrame takes one server frame other than hello, error and disconnect.
func (s *stream) onFrame(f frame) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	switch f.Type {
	case "ping":
	case "subscribed":
		if f.Channel != s.channel {
			s.problems = append(s.problems, fmt.Sprintf("subscribed to %q, want %q", f.Channel, s.channel))
			return
		}
		p := position{f.Epoch, f.Offset}
		if f.Recovered != nil && *f.Recovered && (!s.positioned || p != s.pos) {
			s.problems = append(s.problems, fmt.Sprintf("recovered:true at %v, but the client resumed from %v", p, s.pos))
		}
		s.subs = append(s.subs, subscribed{pos: p, recovered: f.Recovered, at: now})
		s.pos, s.positioned = p, true
	case "message":
		var d payload
		if err := json.Unmarshal(f.Data, &d); err != nil {
			s.problems = append(s.problems, fmt.Sprintf("message data %s: %v", f.Data, err))
			return
		}
		p := position{f.Epoch, f.Offset}
		switch {
		case f.Channel != s.channel:
			s.problems = append(s.problems, fmt.Sprintf("message n=%d on %q, want %q", d.N, f.Channel, s.channel))
		case s.seen[p]:
			s.problems = append(s.problems, fmt.Sprintf("duplicate: n=%d at %v received twice", d.N, p))
		case !s.positioned:
			s.problems = append(s.problems, fmt.Sprintf("message n=%d at %v before subscribed", d.N, p))
		case p.epoch != s.pos.epoch || p.offset != s.pos.offset+1:
			s.problems = append(s.problems, fmt.Sprintf("silent gap: at %v, got n=%d at %v", s.pos, d.N, p))
		}
		s.seen[p] = true
		s.got = append(s.got, delivery{n: d.N, pos: p, at: now})
		s.pos, s.positioned = p, true
	default:
		s.problems = append(s.problems, fmt.Sprintf("unexpected frame %q", f.Type))
	}
}

// onDisconnect records a disconnect frame; the connection ends after it.
func (s *stream) onDisconnect(f frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disconnect = append(s.disconnect, f)
	s.notifyLocked()
}

// lost records the end of a connection, or a failed request or connect.
func (s *stream) lost(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.losses = append(s.losses, loss{at: time.Now(), reason: err.Error()})
	s.notifyLocked()
}

func (s *stream) requested(target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[target]++
}

// waitFor waits until cond, called with the stream locked, holds.
func (s *stream) waitFor(ctx context.Context, what string, cond func(*stream) bool) error {
	for {
		s.mu.Lock()
		ok, ch := cond(s), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			defer s.mu.Unlock()
			last := "nothing"
			if len(s.got) > 0 {
				last = fmt.Sprintf("n=%d", s.got[len(s.got)-1].n)
			}
			return fmt.Errorf("%s: waiting for %s: %w (last message %s, %d losses, problems %q)",
				s.name, what, ctx.Err(), last, len(s.losses), s.problems)
		case <-ch:
		}
	}
}

// waitN waits until the client has received n=last.
func (s *stream) waitN(ctx context.Context, last int) error {
	return s.waitFor(ctx, fmt.Sprintf("n=%d", last), func(s *stream) bool {
		return len(s.got) > 0 && s.got[len(s.got)-1].n >= last
	})
}

// waitSubscribed waits until the client holds a position.
func (s *stream) waitSubscribed(ctx context.Context) error {
	return s.waitFor(ctx, "subscribed", func(s *stream) bool { return s.positioned })
}

// snapshot returns copies of what the stream recorded; call it after the
// client has stopped.
func (s *stream) snapshot() (got []delivery, subs []subscribed, losses []loss, problems []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.got...), append([]subscribed(nil), s.subs...),
		append([]loss(nil), s.losses...), append([]string(nil), s.problems...)
}

func (s *stream) requestCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// numbers returns the n of every delivery, in the order received.
func numbers(got []delivery) []int {
	out := make([]int, len(got))
	for i, d := range got {
		out[i] = d.n
	}
	return out
}

// checkSequence returns a description of the first difference between ns
// and from..to, or "" when they are equal.
func checkSequence(ns []int, from, to int) string {
	for i, n := range ns {
		want := from + i
		if want > to {
			return fmt.Sprintf("%d extra messages after n=%d, the first n=%d", len(ns)-i, to, n)
		}
		if n != want {
			return fmt.Sprintf("message %d is n=%d, want n=%d", i+1, n, want)
		}
	}
	if len(ns) != to-from+1 {
		return fmt.Sprintf("received %d messages, want %d (n=%d..%d)", len(ns), to-from+1, from, to)
	}
	return ""
}
