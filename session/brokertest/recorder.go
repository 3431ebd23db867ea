package brokertest

import (
	"sync"
	"testing"
	"time"

	"github.com/waterspout/waterspout/session"
)

// WaitTimeout bounds every wait for an asynchronous delivery. It is a guard
// against a hung test, not a latency requirement.
const WaitTimeout = 10 * time.Second

// Eventually calls check every 10 ms until it returns nil, and fails the
// test with its last error once WaitTimeout has passed.
func Eventually(tb testing.TB, check func() error) {
	tb.Helper()
	EventuallyWithin(tb, WaitTimeout, check)
}

// EventuallyWithin is Eventually with another bound, for a wait that is
// longer by design.
func EventuallyWithin(tb testing.TB, limit time.Duration, check func() error) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Recorder is a session.BrokerHandler that keeps what a broker delivers and
// notices when one channel's handler calls overlap.
type Recorder struct {
	mu       sync.Mutex
	pubs     map[string][]*session.Publication
	gaps     map[string]int
	inflight map[string]int
	overlaps int
	changed  chan struct{}       // closed and replaced on every event
	events   map[string][]string // join and leave events (presence.go)
}

var _ session.BrokerHandler = (*Recorder)(nil)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		pubs:     make(map[string][]*session.Publication),
		gaps:     make(map[string]int),
		inflight: make(map[string]int),
		changed:  make(chan struct{}),
	}
}

// HandlePublication implements session.BrokerHandler.
func (r *Recorder) HandlePublication(p *session.Publication) {
	r.mu.Lock()
	r.inflight[p.Channel]++
	if r.inflight[p.Channel] > 1 {
		r.overlaps++
	}
	r.mu.Unlock()

	// Widen the window in which a second call for the channel would overlap.
	time.Sleep(time.Microsecond)

	r.mu.Lock()
	r.inflight[p.Channel]--
	r.pubs[p.Channel] = append(r.pubs[p.Channel], p)
	r.notifyLocked()
	r.mu.Unlock()
}

// HandleGap implements session.BrokerHandler.
func (r *Recorder) HandleGap(ch string) {
	r.mu.Lock()
	r.gaps[ch]++
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *Recorder) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Publications returns a copy of what was delivered for ch, in delivery order.
func (r *Recorder) Publications(ch string) []*session.Publication {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*session.Publication(nil), r.pubs[ch]...)
}

// Gaps returns how many times HandleGap was called for ch.
func (r *Recorder) Gaps(ch string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gaps[ch]
}

// Overlaps returns how many HandlePublication calls started while another
// for the same channel was running.
func (r *Recorder) Overlaps() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.overlaps
}

// Await returns true as soon as cond holds, or false after timeout. cond is
// checked again after every delivery or gap; it may use the accessors.
func (r *Recorder) Await(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return cond()
		}
	}
}

// WaitPublications waits until n publications of ch were delivered and
// returns them; it fails the test after WaitTimeout.
func (r *Recorder) WaitPublications(t testing.TB, ch string, n int) []*session.Publication {
	t.Helper()
	if !r.Await(WaitTimeout, func() bool { return len(r.Publications(ch)) >= n }) {
		t.Fatalf("channel %q: %d publications delivered, waited for %d", ch, len(r.Publications(ch)), n)
	}
	return r.Publications(ch)
}

// WaitGap waits until HandleGap was called for ch at least once; it fails
// the test after WaitTimeout.
func (r *Recorder) WaitGap(t testing.TB, ch string) {
	t.Helper()
	if !r.Await(WaitTimeout, func() bool { return r.Gaps(ch) > 0 }) {
		t.Fatalf("channel %q: HandleGap was not called", ch)
	}
}
