package auth

import (
	"fmt"
	"sync"
	"time"
)

// KeyedLimiter is a token bucket per key (a client's IPKey for connects per
// second, an API key for publishes per second): each key may spend burst
// events at once and regains rate events per second.
//
// Memory is bounded by maxKeys buckets. A bucket that has refilled is the
// same as no bucket, so every call drops up to two such idle buckets from
// the least recently used end; when a new key finds the table full anyway,
// the least recently used bucket is dropped even if it is not idle (that
// key starts again with a full bucket). This is nginx's limit_req policy: it
// keeps the table bounded without refusing new keys, so a flood of distinct
// keys cannot lock out clients that have never been seen, at the price that
// the per-key bound is approximate while such a flood lasts. Put a global
// limiter (a KeyedLimiter used with one key) in front for that case.
//
// A nil *KeyedLimiter allows everything. Safe for concurrent use.
type KeyedLimiter struct {
	rate    float64
	burst   float64
	maxKeys int
	now     func() time.Time

	mu   sync.Mutex
	keys map[string]*bucket
	lru  bucket // sentinel: lru.next is the most recently used bucket, lru.prev the least
}

type bucket struct {
	key        string
	tokens     float64
	last       time.Time
	prev, next *bucket
}

// NewKeyedLimiter returns a limiter of rate events per second per key with
// bursts of burst events, holding at most maxKeys keys. now is the clock
// (nil: time.Now). It panics unless rate > 0, burst >= 1 and maxKeys >= 1:
// configuration is checked before it gets here.
func NewKeyedLimiter(rate float64, burst int, maxKeys int, now func() time.Time) *KeyedLimiter {
	if !(rate > 0) || burst < 1 || maxKeys < 1 {
		panic(fmt.Sprintf("auth: NewKeyedLimiter(%v, %d, %d): rate must be positive, burst and maxKeys at least 1", rate, burst, maxKeys))
	}
	if now == nil {
		now = time.Now
	}
	l := &KeyedLimiter{rate: rate, burst: float64(burst), maxKeys: maxKeys, now: now, keys: make(map[string]*bucket)}
	l.lru.next, l.lru.prev = &l.lru, &l.lru
	return l
}

// Allow spends one event of key's bucket and reports whether there was one.
func (l *KeyedLimiter) Allow(key string) bool { return l.AllowN(key, 1) }

// AllowN spends n events of key's bucket at once and reports whether there
// were that many; if not, it spends nothing. An n above the burst passes
// when the bucket is full, so that a batch larger than a bucket can ever
// hold (a broadcast to many channels, a batch of publications) is not
// refused for ever, and it is still charged all n: the bucket goes below
// empty and the key's next events wait until the rate has paid for them.
// (Charging only the burst let batches of 1,000 at a burst of 10 go 100
// times the rate.) An n below 1 is taken as 1.
func (l *KeyedLimiter) AllowN(key string, n int) bool {
	if l == nil {
		return true
	}
	cost := max(float64(n), 1)
	need := min(cost, l.burst) // what must be there: a full bucket at most
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.keys[key]
	if b != nil {
		l.refill(b, now)
		l.unlink(b)
	}
	for i := 0; i < 2 && l.lru.prev != &l.lru; i++ {
		old := l.lru.prev
		l.refill(old, now)
		if old.tokens < l.burst {
			break
		}
		l.drop(old)
	}
	if b == nil {
		if len(l.keys) >= l.maxKeys {
			b = l.lru.prev
			l.drop(b)
			*b = bucket{}
		} else {
			b = new(bucket)
		}
		b.key, b.tokens, b.last = key, l.burst, now
		l.keys[key] = b
	}
	b.next, b.prev = l.lru.next, &l.lru
	b.next.prev, l.lru.next = b, b
	if b.tokens < need {
		return false
	}
	b.tokens -= cost
	return true
}

// RetryAfter is how long key must wait before AllowN(key, n) can pass,
// as things stand (0 if it would pass now): what a 429's Retry-After
// should say, since after an n above the burst the wait can be far longer
// than a second. It spends nothing.
func (l *KeyedLimiter) RetryAfter(key string, n int) time.Duration {
	if l == nil {
		return 0
	}
	need := min(max(float64(n), 1), l.burst)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.keys[key]
	if b == nil {
		return 0
	}
	tokens := l.tokensAt(b, now)
	if tokens >= need {
		return 0
	}
	return time.Duration((need - tokens) / l.rate * float64(time.Second))
}

// Refund gives back n events key spent (taken as 1 below 1), up to the
// burst. It lets a caller charge only the events that turn out to count:
// spend before the work, so that concurrent requests cannot all pass on
// the same last event, and refund when the work shows it was not one to
// limit (a right secret, where only wrong ones are limited). A key no
// longer held gets nothing: it starts again with a full bucket anyway.
func (l *KeyedLimiter) Refund(key string, n int) {
	if l == nil {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.keys[key]; b != nil {
		l.refill(b, now)
		b.tokens = min(l.burst, b.tokens+max(float64(n), 1))
	}
}

// Len returns the number of keys held.
func (l *KeyedLimiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// refill adds what b earned since its last update (see tokensAt).
func (l *KeyedLimiter) refill(b *bucket, now time.Time) {
	if now.After(b.last) {
		b.tokens, b.last = l.tokensAt(b, now), now
	}
}

// tokensAt is what b holds at now: what it held at its last update and
// what the rate earned since, up to the burst. A clock that went back
// earns nothing.
func (l *KeyedLimiter) tokensAt(b *bucket, now time.Time) float64 {
	if d := now.Sub(b.last); d > 0 {
		return min(l.burst, b.tokens+d.Seconds()*l.rate)
	}
	return b.tokens
}

func (l *KeyedLimiter) unlink(b *bucket) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}

func (l *KeyedLimiter) drop(b *bucket) {
	l.unlink(b)
	delete(l.keys, b.key)
}

// ConnLimiter counts open connections per key (a client's IPKey) and refuses
// more than perKey at once. It holds an entry only for keys with open
// connections. A nil *ConnLimiter allows everything. Safe for concurrent use.
type ConnLimiter struct {
	perKey int
	mu     sync.Mutex
	counts map[string]int
}

// NewConnLimiter returns a limiter of perKey connections per key. It panics
// unless perKey >= 1.
func NewConnLimiter(perKey int) *ConnLimiter {
	if perKey < 1 {
		panic(fmt.Sprintf("auth: NewConnLimiter(%d): perKey must be at least 1", perKey))
	}
	return &ConnLimiter{perKey: perKey, counts: make(map[string]int)}
}

// Acquire takes one of key's connection slots. When ok, release gives it
// back; call it exactly when the connection ends (extra calls do nothing).
func (l *ConnLimiter) Acquire(key string) (release func(), ok bool) {
	if l == nil {
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts[key] >= l.perKey {
		return nil, false
	}
	l.counts[key]++
	released := false
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if released {
			return
		}
		released = true
		if l.counts[key]--; l.counts[key] <= 0 {
			delete(l.counts, key)
		}
	}, true
}

// Count returns key's open connections.
func (l *ConnLimiter) Count(key string) int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[key]
}
