package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/testclock"
)

func TestKeyedLimiterBurstAndRefill(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	l := NewKeyedLimiter(2, 3, 100, clock.Now) // 2 per second, bursts of 3
	allowed := func(key string, n int) int {
		got := 0
		for range n {
			if l.Allow(key) {
				got++
			}
		}
		return got
	}
	steps := []struct {
		advance time.Duration
		key     string
		tries   int
		want    int
	}{
		{0, "a", 5, 3},                                // the burst, then refusal
		{0, "b", 5, 3},                                // keys are independent
		{250 * time.Millisecond, "a", 1, 0},           // half an event earned
		{250 * time.Millisecond, "a", 2, 1},           // one earned
		{10 * time.Second, "a", 10, 3},                // refills up to the burst, no more
		{-time.Hour, "a", 1, 0},                       // a clock going back earns nothing
		{time.Hour + 500*time.Millisecond, "a", 2, 1}, // and costs nothing either
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		if got := allowed(st.key, st.tries); got != st.want {
			t.Fatalf("step %d: %d of %d allowed for %q, want %d", i, got, st.tries, st.key, st.want)
		}
	}
}

func TestKeyedLimiterBounded(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	l := NewKeyedLimiter(1, 2, 10, clock.Now)
	for i := range 1000 { // a flood of distinct keys
		if !l.Allow(fmt.Sprint("flood-", i)) {
			t.Fatalf("new key %d refused", i)
		}
		if l.Len() > 10 {
			t.Fatalf("%d keys held, max 10", l.Len())
		}
	}
	// A key evicted while not idle starts again with a full bucket.
	l.Allow("x")
	l.Allow("x")
	if l.Allow("x") {
		t.Fatal("x over its burst")
	}
	for i := range 10 {
		l.Allow(fmt.Sprint("other-", i))
	}
	if !l.Allow("x") {
		t.Fatal("evicted key did not start afresh")
	}
	// Idle buckets go by themselves: after a refill, any call drops up to two.
	clock.Advance(time.Minute)
	for range 5 {
		l.Allow("y")
	}
	if got := l.Len(); got != 1 {
		t.Fatalf("%d keys held after all went idle, want 1", got)
	}
}

func TestKeyedLimiterRecentKeyStays(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	l := NewKeyedLimiter(1, 1, 3, clock.Now)
	l.Allow("busy")
	for i := range 2 {
		l.Allow(fmt.Sprint("k", i))
	}
	l.Allow("busy") // refused, but now the most recently used
	l.Allow("new")  // evicts k0, the least recently used
	if l.Allow("busy") {
		t.Fatal("the recently used key was evicted")
	}
}

func TestKeyedLimiterNil(t *testing.T) {
	var l *KeyedLimiter
	if !l.Allow("x") || l.Len() != 0 {
		t.Fatal("nil limiter refuses")
	}
}

func TestNewLimiterPanics(t *testing.T) {
	for _, f := range []func(){
		func() { NewKeyedLimiter(0, 1, 1, nil) },
		func() { NewKeyedLimiter(1, 0, 1, nil) },
		func() { NewKeyedLimiter(1, 1, 0, nil) },
		func() { NewConnLimiter(0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

func TestConnLimiter(t *testing.T) {
	l := NewConnLimiter(2)
	r1, ok1 := l.Acquire("ip")
	r2, ok2 := l.Acquire("ip")
	_, ok3 := l.Acquire("ip")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquired %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := l.Acquire("other"); !ok {
		t.Fatal("keys are not independent")
	}
	r1()
	r1() // a second release gives nothing back
	if l.Count("ip") != 1 {
		t.Fatalf("count %d after one release", l.Count("ip"))
	}
	r3, ok := l.Acquire("ip")
	if !ok {
		t.Fatal("released slot not reusable")
	}
	if _, ok := l.Acquire("ip"); ok {
		t.Fatal("double release freed two slots")
	}
	r2()
	r3()
	l.mu.Lock()
	_, held := l.counts["ip"]
	l.mu.Unlock()
	if held {
		t.Fatal("an entry is kept for a key without connections")
	}
	var none *ConnLimiter
	if rel, ok := none.Acquire("x"); !ok || rel == nil {
		t.Fatal("nil limiter refuses")
	}
}

func TestConnLimiterConcurrent(t *testing.T) {
	l := NewConnLimiter(5)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 100 {
				if rel, ok := l.Acquire("ip"); ok {
					if n := l.Count("ip"); n > 5 {
						t.Errorf("count %d over the limit", n)
					}
					rel()
				}
			}
		})
	}
	wg.Wait()
	if n := l.Count("ip"); n != 0 {
		t.Fatalf("count %d after every release", n)
	}
}

func TestKeyedLimiterAllowN(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	l := NewKeyedLimiter(10, 5, 100, clock.Now)
	steps := []struct {
		advance time.Duration
		n       int
		want    bool
	}{
		{0, 3, true},                        // 2 left
		{0, 3, false},                       // not enough: nothing spent
		{0, 2, true},                        // the 2 are still there
		{100 * time.Millisecond, 0, true},   // below 1 costs 1
		{0, 1, false},                       // empty
		{time.Second, 50, true},             // above the burst passes on a full bucket
		{0, 1, false},                       // and costs all 50: 45 owed
		{200 * time.Millisecond, 50, false}, // 2 of the 45 earned: not a full bucket
		{4 * time.Second, 1, false},         // 42 of them: still owing
		{400 * time.Millisecond, 1, true},   // paid back: 5 + 10/s × 5.6 s ≥ 50 + 1
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		if got := l.AllowN("k", st.n); got != st.want {
			t.Fatalf("step %d: AllowN(%d) = %v, want %v", i, st.n, got, st.want)
		}
	}
}

// TestKeyedLimiterRetryAfter: the wait a refusal reports is the time the
// rate takes to earn what the request needs (at most a full bucket), owed
// events included, and spends nothing.
func TestKeyedLimiterRetryAfter(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	l := NewKeyedLimiter(10, 5, 100, clock.Now)
	check := func(n int, want time.Duration) {
		t.Helper()
		if got := l.RetryAfter("k", n); got < want-time.Millisecond || got > want+time.Millisecond {
			t.Fatalf("RetryAfter(%d) = %v, want %v", n, got, want)
		}
	}
	check(1, 0) // a key never seen has a full bucket
	if !l.AllowN("k", 3) {
		t.Fatal("3 of 5 refused")
	}
	check(2, 0)
	check(3, 100*time.Millisecond)  // 2 left, 1 more at 10/s
	check(50, 300*time.Millisecond) // above the burst waits for a full bucket
	if !l.AllowN("k", 2) {
		t.Fatal("the last 2 refused")
	}
	clock.Advance(time.Second) // full again
	if !l.AllowN("k", 50) {
		t.Fatal("50 on a full bucket refused")
	}
	check(1, 4600*time.Millisecond) // 45 owed, then 1: 46 at 10/s
	check(1, 4600*time.Millisecond) // asking spent nothing
	clock.Advance(4600 * time.Millisecond)
	check(1, 0)
	var none *KeyedLimiter
	if none.RetryAfter("k", 1) != 0 {
		t.Error("a nil limiter makes a wait")
	}
}

func TestKeyedLimiterRefund(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	l := NewKeyedLimiter(0.1, 2, 100, clock.Now) // one per 10 s, bursts of 2
	// Spent and refunded, any number of times: the bucket stays full.
	for range 50 {
		if !l.Allow("a") {
			t.Fatal("a refunded event was not given back")
		}
		l.Refund("a", 1)
	}
	// Spent and kept: the burst, then refusal.
	if !l.Allow("a") || !l.Allow("a") || l.Allow("a") {
		t.Fatal("the burst of 2 was not what a non-refunded key got")
	}
	// A refund never raises a bucket above the burst.
	l.Refund("a", 5)
	if !l.Allow("a") || !l.Allow("a") || l.Allow("a") {
		t.Fatal("a refund of 5 gave more than the burst of 2")
	}
	// A key never seen gets nothing (and is not created).
	l.Refund("never", 1)
	if l.Len() != 1 {
		t.Fatalf("%d keys after refunding an unknown one, want 1", l.Len())
	}
	var none *KeyedLimiter
	none.Refund("a", 1) // a nil limiter limits nothing and refunds nothing
}
