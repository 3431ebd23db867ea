package brokertest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waterspout/waterspout/session"
)

// Run runs the conformance suite. newBroker returns a fresh, empty broker
// for each subtest and arranges for it to be closed when that subtest ends;
// Run sets its handler. Subtests run in parallel.
func Run(t *testing.T, newBroker func(t *testing.T) session.Broker) {
	tests := append([]scenario{
		{"offsets start at 1 and grow by 1", testOffsets},
		{"channels are independent", testIndependentChannels},
		{"history of an unknown channel fixes its position", testUnknownChannel},
		{"history window by size", testHistoryWindow},
		{"history size zero keeps none", testHistorySizeZero},
		{"history size change keeps the newest", testHistoryResize},
		{"history TTL expires each publication", testHistoryTTL},
		{"idempotency key", testIdempotencyKey},
		{"idempotency key expires", testIdempotencyKeyExpires},
		{"publish after subscribe returns is delivered", testSubscribeThenPublish},
		{"unsubscribe stops delivery", testUnsubscribe},
		{"subscribe after unsubscribe delivers", testResubscribe},
		{"concurrent subscribes of one channel", testConcurrentSubscribe},
		{"data and key round-trip byte-exact", testRoundTrip},
		{"concurrent publishers get dense offsets delivered in order", testConcurrentPublishers},
	}, presenceScenarios...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBroker(t)
			rec := NewRecorder()
			b.SetHandler(rec)
			tt.run(t, b, rec)
			if n := rec.Overlaps(); n != 0 {
				t.Fatalf("HandlePublication ran concurrently for one channel %d times", n)
			}
		})
	}
}

// scenario is one subtest of the suite: it runs on a fresh broker whose
// handler is rec.
type scenario struct {
	name string
	run  func(t *testing.T, b session.Broker, rec *Recorder)
}

const minute = time.Minute

func opts(size int, ttl time.Duration) session.PublishOptions {
	return session.PublishOptions{HistorySize: size, HistoryTTL: ttl, KeyTTL: max(ttl, session.MinKeyTTL)}
}

func publish(t *testing.T, b session.Broker, ch, data string, o session.PublishOptions) session.PublishResult {
	t.Helper()
	res, err := b.Publish(context.Background(), ch, json.RawMessage(data), o)
	if err != nil {
		t.Fatalf("publish to %q: %v", ch, err)
	}
	if res.Publication == nil {
		t.Fatalf("publish to %q returned no publication", ch)
	}
	return res
}

func history(t *testing.T, b session.Broker, ch string, since *session.Position, limit int) session.HistoryResult {
	t.Helper()
	res, err := b.History(context.Background(), ch, session.HistoryQuery{Since: since, Limit: limit})
	if err != nil {
		t.Fatalf("history of %q: %v", ch, err)
	}
	return res
}

func subscribe(t *testing.T, b session.Broker, ch string) {
	t.Helper()
	if err := b.Subscribe(context.Background(), ch); err != nil {
		t.Fatalf("subscribe %q: %v", ch, err)
	}
}

func offsets(ps []*session.Publication) []uint64 {
	out := []uint64{}
	for _, p := range ps {
		out = append(out, p.Offset)
	}
	return out
}

func span(from, to uint64) []uint64 {
	out := []uint64{}
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// validEpoch is the Broker contract for epochs: what positions and cursors
// accept, and no longer than session.MaxBrokerEpochLen so cursors stay short.
func validEpoch(e string) bool {
	return session.ValidEpoch(e) && len(e) <= session.MaxBrokerEpochLen
}

// sentinel publishes to a channel that is subscribed and waits until that
// publication is delivered: a broker delivers in order, so anything published
// before it that was going to be delivered has been by then.
func sentinel(t *testing.T, b session.Broker, rec *Recorder, ch string) {
	t.Helper()
	p := publish(t, b, ch, `"sentinel"`, opts(100, minute))
	arrived := func() bool {
		for _, d := range rec.Publications(ch) {
			if d.Position() == p.Position() {
				return true
			}
		}
		return false
	}
	if !rec.Await(WaitTimeout, arrived) {
		t.Fatalf("sentinel %v on %q was not delivered", p.Position(), ch)
	}
}

func testOffsets(t *testing.T, b session.Broker, _ *Recorder) {
	var epoch string
	before := time.Now()
	for i := uint64(1); i <= 5; i++ {
		res := publish(t, b, "a", fmt.Sprint(i), opts(10, minute))
		p := res.Publication
		if res.Duplicate || p.Offset != i || p.Channel != "a" || p.Key != "" {
			t.Fatalf("publication %d: %+v (duplicate %v)", i, p, res.Duplicate)
		}
		if i == 1 {
			epoch = p.Epoch
			if !validEpoch(epoch) {
				t.Fatalf("epoch %q is not 1..64 URL-safe characters", epoch)
			}
		} else if p.Epoch != epoch {
			t.Fatalf("epoch changed within one history: %q → %q", epoch, p.Epoch)
		}
		// Time is Unix milliseconds; a minute of slack tolerates clock skew
		// but not a unit error.
		if d := time.UnixMilli(p.Time).Sub(before); d < -minute || d > minute {
			t.Fatalf("publication time %d is not Unix milliseconds near now", p.Time)
		}
	}
	res := history(t, b, "a", nil, -1)
	if res.Top != (session.Position{Epoch: epoch, Offset: 5}) || !slices.Equal(offsets(res.Publications), span(1, 5)) {
		t.Fatalf("history: top %v, offsets %v", res.Top, offsets(res.Publications))
	}
	for i, p := range res.Publications {
		if p.Epoch != epoch || p.Channel != "a" || string(p.Data) != fmt.Sprint(i+1) {
			t.Fatalf("history entry %d: %+v", i, p)
		}
	}
}

func testIndependentChannels(t *testing.T, b session.Broker, _ *Recorder) {
	for i := uint64(1); i <= 3; i++ {
		for _, ch := range []string{"x", "y", "x:1"} {
			if p := publish(t, b, ch, `"`+ch+`"`, opts(10, minute)); p.Offset != i {
				t.Fatalf("%s: offset %d, want %d: offsets are per channel", ch, p.Offset, i)
			}
		}
	}
	for _, ch := range []string{"x", "y", "x:1"} {
		res := history(t, b, ch, nil, -1)
		if res.Top.Offset != 3 || len(res.Publications) != 3 {
			t.Fatalf("%s: top %v with %d publications", ch, res.Top, len(res.Publications))
		}
		for _, p := range res.Publications {
			if p.Channel != ch || string(p.Data) != `"`+ch+`"` {
				t.Fatalf("history of %s holds %+v", ch, p)
			}
		}
	}
}

func testUnknownChannel(t *testing.T, b session.Broker, _ *Recorder) {
	first := history(t, b, "new", nil, -1)
	if !validEpoch(first.Top.Epoch) || first.Top.Offset != 0 || len(first.Publications) != 0 {
		t.Fatalf("unknown channel: %+v", first)
	}
	if again := history(t, b, "new", nil, -1); again.Top != first.Top {
		t.Fatalf("position of an empty channel changed: %v → %v", first.Top, again.Top)
	}
	// A client that subscribed to the empty channel recovers its first publication.
	p := publish(t, b, "new", `1`, opts(10, minute))
	if p.Epoch != first.Top.Epoch || p.Offset != 1 {
		t.Fatalf("first publication at %v, the channel was announced at %v", p.Position(), first.Top)
	}
	res := history(t, b, "new", &first.Top, -1)
	if !res.Recoverable || !slices.Equal(offsets(res.Publications), []uint64{1}) {
		t.Fatalf("recover from the empty position: %+v", res)
	}
}

func testHistoryWindow(t *testing.T, b session.Broker, _ *Recorder) {
	var epoch string
	for i := 1; i <= 10; i++ {
		epoch = publish(t, b, "h", fmt.Sprint(i), opts(4, minute)).Epoch
	}
	pos := func(o uint64) *session.Position { return &session.Position{Epoch: epoch, Offset: o} }
	tests := []struct {
		name        string
		since       *session.Position
		limit       int
		recoverable bool
		offsets     []uint64
	}{
		{"all retained", nil, -1, false, span(7, 10)},
		{"all retained, limit", nil, 2, false, span(7, 8)},
		{"all retained, limit 0", nil, 0, false, nil},
		{"since inside window", pos(8), -1, true, span(9, 10)},
		{"since at the edge of the window", pos(6), -1, true, span(7, 10)},
		{"since at the edge, limit", pos(6), 3, true, span(7, 9)},
		{"since inside, limit larger than the rest", pos(8), 5, true, span(9, 10)},
		{"since inside, limit 0", pos(7), 0, true, nil},
		{"since at top", pos(10), -1, true, nil},
		{"since left the window", pos(5), -1, false, nil},
		{"since at the start", pos(0), -1, false, nil},
		{"wrong epoch", &session.Position{Epoch: "other", Offset: 8}, -1, false, nil},
		{"from the future", pos(11), -1, false, nil},
		{"far future", pos(1 << 60), -1, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := history(t, b, "h", tt.since, tt.limit)
			if res.Top != *pos(10) {
				t.Fatalf("top %v, want %v", res.Top, *pos(10))
			}
			if res.Recoverable != tt.recoverable {
				t.Fatalf("recoverable %v, want %v", res.Recoverable, tt.recoverable)
			}
			if got := offsets(res.Publications); !slices.Equal(got, append([]uint64{}, tt.offsets...)) {
				t.Fatalf("offsets %v, want %v", got, tt.offsets)
			}
			for _, p := range res.Publications {
				if p.Epoch != epoch || string(p.Data) != fmt.Sprint(p.Offset) {
					t.Fatalf("entry %+v", p)
				}
			}
		})
	}
}

func testHistorySizeZero(t *testing.T, b session.Broker, rec *Recorder) {
	subscribe(t, b, "z")
	var p session.PublishResult
	for i := 1; i <= 3; i++ {
		p = publish(t, b, "z", fmt.Sprint(i), opts(0, minute))
	}
	// Keeping no history does not stop live delivery.
	if got := offsets(rec.WaitPublications(t, "z", 3)); !slices.Equal(got, span(1, 3)) {
		t.Fatalf("delivered %v", got)
	}
	top := p.Position()
	if res := history(t, b, "z", nil, -1); res.Top != top || len(res.Publications) != 0 {
		t.Fatalf("history of a channel keeping none: %+v", res)
	}
	if res := history(t, b, "z", &top, -1); !res.Recoverable {
		t.Fatal("a client at the top is not recoverable")
	}
	behind := session.Position{Epoch: top.Epoch, Offset: 2}
	if res := history(t, b, "z", &behind, -1); res.Recoverable || len(res.Publications) != 0 {
		t.Fatalf("a client behind a channel keeping no history: %+v", res)
	}
}

func testHistoryResize(t *testing.T, b session.Broker, _ *Recorder) {
	steps := []struct {
		publish, size int
		retained      []uint64
	}{
		{6, 4, span(3, 6)},
		{1, 2, span(6, 7)}, // shrinking keeps the newest
		{1, 4, span(6, 8)}, // growing keeps what is there
	}
	for _, s := range steps {
		for i := 0; i < s.publish; i++ {
			publish(t, b, "r", `0`, opts(s.size, minute))
		}
		if got := offsets(history(t, b, "r", nil, -1).Publications); !slices.Equal(got, s.retained) {
			t.Fatalf("size %d: retained %v, want %v", s.size, got, s.retained)
		}
	}
}

func testHistoryTTL(t *testing.T, b session.Broker, _ *Recorder) {
	const ttl = time.Second
	const slack = 100 * time.Millisecond
	o := opts(10, ttl)
	a := publish(t, b, "t", `1`, o)
	time.Sleep(ttl / 2)
	c := publish(t, b, "t", `2`, o)
	expires := func(p session.PublishResult) time.Time { return time.UnixMilli(p.Time).Add(ttl) }

	// Once the first has expired and while the second has not, history holds
	// exactly the second: expiry is per publication, not per channel. The
	// check only applies when this machine kept to the schedule.
	time.Sleep(time.Until(expires(a).Add(slack)))
	start := time.Now()
	res := history(t, b, "t", nil, -1)
	if time.Now().Before(expires(c).Add(-slack)) && start.After(expires(a)) {
		if got := offsets(res.Publications); !slices.Equal(got, []uint64{2}) {
			t.Fatalf("between the two expiries history holds %v, want [2]", got)
		}
	} else {
		t.Log("too slow to check the state between the two expiries")
	}

	// Until it is empty, history only ever shrinks from the front; a client
	// after the first publication is recoverable exactly while the second is kept.
	after1 := &session.Position{Epoch: a.Epoch, Offset: 1}
	deadline := time.Now().Add(WaitTimeout)
	for {
		res := history(t, b, "t", nil, -1)
		got := offsets(res.Publications)
		if !slices.Equal(got, span(1, 2)) && !slices.Equal(got, []uint64{2}) && len(got) != 0 {
			t.Fatalf("history while expiring: %v", got)
		}
		r1 := history(t, b, "t", after1, -1)
		if r1.Recoverable != (len(r1.Publications) == 1) || r1.Recoverable && r1.Publications[0].Offset != 2 {
			t.Fatalf("from offset 1 while expiring: recoverable %v with %v", r1.Recoverable, offsets(r1.Publications))
		}
		if len(got) == 0 && !r1.Recoverable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history still holds %v after %v", got, WaitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The channel's position outlives its history: a client at the top
	// still recovers (with nothing to replay), one behind it does not.
	top := c.Position()
	if res := history(t, b, "t", &top, -1); !res.Recoverable || res.Top != top || len(res.Publications) != 0 {
		t.Fatalf("client at the top of an expired history: %+v", res)
	}
	if res := history(t, b, "t", after1, -1); res.Recoverable {
		t.Fatal("a client whose next publication expired is recoverable")
	}
	if p := publish(t, b, "t", `3`, o); p.Position() != (session.Position{Epoch: a.Epoch, Offset: 3}) {
		t.Fatalf("publish after history expired: %v, want offset 3 in epoch %q", p.Position(), a.Epoch)
	}
}

func testIdempotencyKey(t *testing.T, b session.Broker, rec *Recorder) {
	subscribe(t, b, "k")
	o := opts(10, minute)
	o.Key = "order-42"
	first := publish(t, b, "k", `{"n":1}`, o)
	dup := publish(t, b, "k", `{"n":2}`, o)
	if first.Duplicate || !dup.Duplicate {
		t.Fatalf("duplicate flags: first %v, second %v", first.Duplicate, dup.Duplicate)
	}
	if dup.Position() != first.Position() || string(dup.Data) != `{"n":1}` || dup.Key != "order-42" || dup.Time != first.Time {
		t.Fatalf("a repeated key returned %+v, want the original %+v", dup.Publication, first.Publication)
	}
	// The duplicate was not delivered and did not take an offset.
	sentinel(t, b, rec, "k")
	got := rec.Publications("k")
	if !slices.Equal(offsets(got), span(1, 2)) || string(got[0].Data) != `{"n":1}` || got[0].Key != "order-42" {
		t.Fatalf("delivered %v", offsets(got))
	}
	if res := history(t, b, "k", nil, -1); !slices.Equal(offsets(res.Publications), span(1, 2)) {
		t.Fatalf("history after a duplicate: %v", offsets(res.Publications))
	}
	// Keys are per channel.
	if other := publish(t, b, "k2", `1`, o); other.Duplicate {
		t.Fatal("a key was deduplicated across channels")
	}
	// Another key on the same channel is a new publication.
	o.Key = "order-43"
	if next := publish(t, b, "k", `3`, o); next.Duplicate || next.Offset != 3 {
		t.Fatalf("a new key: %+v (duplicate %v)", next.Publication, next.Duplicate)
	}
}

func testIdempotencyKeyExpires(t *testing.T, b session.Broker, _ *Recorder) {
	o := session.PublishOptions{Key: "once", HistorySize: 10, HistoryTTL: time.Second, KeyTTL: time.Second}
	first := publish(t, b, "ke", `1`, o)
	// Each try that is still a duplicate changes nothing, so the first that
	// is not must take the next offset.
	deadline := time.Now().Add(WaitTimeout)
	for {
		res := publish(t, b, "ke", `2`, o)
		if !res.Duplicate {
			if res.Offset != first.Offset+1 || string(res.Data) != `2` {
				t.Fatalf("after the key expired: %+v", res.Publication)
			}
			return
		}
		if res.Position() != first.Position() {
			t.Fatalf("duplicate returned %v, want %v", res.Position(), first.Position())
		}
		if time.Now().After(deadline) {
			t.Fatalf("key with a 1 s TTL still remembered after %v", WaitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testSubscribeThenPublish(t *testing.T, b session.Broker, rec *Recorder) {
	// Each channel is published to right after Subscribe returns; a broker
	// that returns before delivery is in place loses some of these.
	for i := 0; i < 20; i++ {
		ch := fmt.Sprintf("s%d", i)
		subscribe(t, b, ch)
		publish(t, b, ch, fmt.Sprint(i), opts(10, minute))
		got := rec.WaitPublications(t, ch, 1)
		if len(got) != 1 || got[0].Channel != ch || string(got[0].Data) != fmt.Sprint(i) || got[0].Offset != 1 {
			t.Fatalf("delivered %+v", got)
		}
	}
	// Subscribing again is harmless and does not duplicate delivery.
	subscribe(t, b, "s0")
	publish(t, b, "s0", `"again"`, opts(10, minute))
	sentinel(t, b, rec, "s1")
	if got := offsets(rec.Publications("s0")); !slices.Equal(got, span(1, 2)) {
		t.Fatalf("after a second Subscribe delivered %v", got)
	}
}

func testUnsubscribe(t *testing.T, b session.Broker, rec *Recorder) {
	ctx := context.Background()
	subscribe(t, b, "u")
	subscribe(t, b, "keep")
	publish(t, b, "u", `1`, opts(10, minute))
	rec.WaitPublications(t, "u", 1)
	// Unsubscribing a channel that was never subscribed is not an error.
	if err := b.Unsubscribe(ctx, "never"); err != nil {
		t.Fatalf("unsubscribe from a channel never subscribed: %v", err)
	}
	if err := b.Unsubscribe(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "u", `2`, opts(10, minute))
	publish(t, b, "never", `1`, opts(10, minute))
	sentinel(t, b, rec, "keep")
	if got := offsets(rec.Publications("u")); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("after Unsubscribe delivered %v", got)
	}
	if got := rec.Publications("never"); len(got) != 0 {
		t.Fatalf("delivered %d publications of a channel never subscribed", len(got))
	}
	// Subscribing again resumes delivery; the history holds what was missed.
	subscribe(t, b, "u")
	publish(t, b, "u", `3`, opts(10, minute))
	if got := offsets(rec.WaitPublications(t, "u", 2)); !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("after subscribing again delivered %v", got)
	}
}

func testResubscribe(t *testing.T, b session.Broker, rec *Recorder) {
	// A broker that mistook the confirmation of an earlier subscribe for the
	// latest one would return before delivery is back in place.
	for i := 1; i <= 20; i++ {
		subscribe(t, b, "again")
		if err := b.Unsubscribe(context.Background(), "again"); err != nil {
			t.Fatal(err)
		}
		subscribe(t, b, "again")
		publish(t, b, "again", fmt.Sprint(i), opts(10, minute))
		if got := offsets(rec.WaitPublications(t, "again", i)); !slices.Equal(got, span(1, uint64(i))) {
			t.Fatalf("round %d: delivered %v", i, got)
		}
	}
}

func testConcurrentSubscribe(t *testing.T, b session.Broker, rec *Recorder) {
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Subscribe(context.Background(), "many"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	publish(t, b, "many", `1`, opts(10, minute))
	subscribe(t, b, "other")
	sentinel(t, b, rec, "other")
	if got := offsets(rec.WaitPublications(t, "many", 1)); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("after concurrent subscribes delivered %v", got)
	}
}

func testRoundTrip(t *testing.T, b session.Broker, rec *Recorder) {
	samples := []string{
		`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
		`"héllo wörld ✓ 日本語 🎉"`,
		`"\u00e9\u2028\ud83c\udf89 \"quoted\" \\ \/"`,
		`12345678901234567890123456789`,
		`3.14159265358979323846264338327950288`,
		`-0.0`,
		`1e-7`,
		`0`,
		`null`,
		`[]`,
		`{}`,
		" [ 1 ,\n\t2 ] ",
		`"1:ep:2:3:abc"`,
		`"` + strings.Repeat("x", 64<<10) + `"`,
	}
	// Keys must differ, or later samples would be duplicates of earlier ones.
	key := func(i int) string {
		switch i % 4 {
		case 0:
			return ""
		case 1:
			return fmt.Sprintf("colon:%d:2:", i)
		case 2:
			return fmt.Sprintf("ключ ✓ %d", i)
		}
		return fmt.Sprintf("%0256d", i)
	}
	subscribe(t, b, "rt")
	for i, data := range samples {
		o := opts(len(samples), minute)
		o.Key = key(i)
		res := publish(t, b, "rt", data, o)
		if string(res.Data) != data || res.Key != o.Key {
			t.Fatalf("publish result changed data or key: %q → %q, %q → %q", short(data), short(string(res.Data)), o.Key, res.Key)
		}
	}
	delivered := rec.WaitPublications(t, "rt", len(samples))
	hist := history(t, b, "rt", nil, -1).Publications
	if len(hist) != len(samples) {
		t.Fatalf("history holds %d of %d", len(hist), len(samples))
	}
	for i, data := range samples {
		key := key(i)
		for _, p := range []*session.Publication{delivered[i], hist[i]} {
			if string(p.Data) != data || p.Key != key || p.Channel != "rt" {
				t.Fatalf("sample %d: got data %q key %q, want %q key %q", i, short(string(p.Data)), p.Key, short(data), key)
			}
		}
	}
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func testConcurrentPublishers(t *testing.T, b session.Broker, rec *Recorder) {
	const workers, each = 8, 200
	chans := []string{"c", "c:other"}
	for _, ch := range chans {
		subscribe(t, b, ch)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string][]uint64{}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ch := chans[i%len(chans)]
				res, err := b.Publish(context.Background(), ch, json.RawMessage(`0`), opts(workers*each, minute))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[ch] = append(got[ch], res.Offset)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	n := workers * each / len(chans)
	for _, ch := range chans {
		slices.Sort(got[ch])
		if !slices.Equal(got[ch], span(1, uint64(n))) {
			t.Fatalf("%s: publish offsets are not 1..%d without gaps or repeats", ch, n)
		}
		pubs := rec.WaitPublications(t, ch, n)
		if !slices.Equal(offsets(pubs), span(1, uint64(n))) {
			t.Fatalf("%s: deliveries are not offsets 1..%d in order", ch, n)
		}
		epoch := pubs[0].Epoch
		for _, p := range pubs {
			if p.Epoch != epoch {
				t.Fatalf("%s: epoch changed from %q to %q at offset %d", ch, epoch, p.Epoch, p.Offset)
			}
		}
	}
}
