package redis

import (
	"sync"
	"sync/atomic"
	"time"
)

// startBuckets is how many parts the start window is counted in. Each spans
// window/(startBuckets-1), so a start leaves the count between window and
// window·(1+1/(startBuckets-1)) after it: never before its position expires.
const startBuckets = 64

// starts caps the channels this node starts in Redis within a window (the
// idle channel TTL): a publish, subscribe or history read of a channel
// Redis holds no position for writes one, which lives at least that long.
// Without a cap, clients subscribing to made-up names would fill Redis,
// which runs with noeviction (see OPERATIONS.md), until every write fails.
// The memory broker caps the states it holds (MemoryBrokerConfig.MaxChannels);
// Redis keeps no count of them, so each node caps what it adds, and Redis
// holds at most the nodes' caps together.
//
// The count is by buckets (startBuckets), so it needs no memory per
// start. Calls running at once may each pass Allowed before any of them
// counts its start: the cap is exceeded by at most the calls in flight.
type starts struct {
	max  int64
	span time.Duration // one bucket
	now  func() time.Time

	open atomic.Bool // the count is under max (a hint; Allowed checks again)

	mu     sync.Mutex
	bucket [startBuckets]int64
	cur    int64 // the index of the newest bucket, in spans since the Unix epoch
	total  int64
}

func newStarts(limit int, window time.Duration, now func() time.Time) *starts {
	s := &starts{max: int64(limit), span: max(window/(startBuckets-1), time.Millisecond), now: now}
	s.open.Store(true)
	return s
}

// Allowed reports whether a new channel may start now.
func (s *starts) Allowed() bool {
	if s.open.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	return s.total < s.max
}

// Started counts a channel started now.
func (s *starts) Started() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	s.bucket[s.cur%startBuckets]++
	s.total++
	s.open.Store(s.total < s.max)
}

// advanceLocked moves the window to now, dropping the buckets that left it.
func (s *starts) advanceLocked() {
	now := s.now().UnixNano() / int64(s.span)
	if now <= s.cur {
		return
	}
	for i := s.cur + 1; i <= now && i <= s.cur+startBuckets; i++ {
		b := &s.bucket[i%startBuckets]
		s.total -= *b
		*b = 0
	}
	s.cur = now
	s.open.Store(s.total < s.max)
}
