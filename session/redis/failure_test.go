package redis

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

var opts = session.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute, KeyTTL: session.MinKeyTTL}

func mustPublish(t *testing.T, b *Broker, ch, data string) session.PublishResult {
	t.Helper()
	res, err := b.Publish(context.Background(), ch, json.RawMessage(data), opts)
	if err != nil {
		t.Fatalf("publish to %q: %v", ch, err)
	}
	return res
}

// publishUntilDelivered publishes through pub until one publication reaches
// rec, as a backend keeps publishing while a node's subscription recovers.
// Publications made before the node resubscribed are lost to pub/sub (that
// is what the gap reported); the first one delivered is returned.
func publishUntilDelivered(t *testing.T, pub *Broker, rec *brokertest.Recorder, ch string) *session.Publication {
	t.Helper()
	deadline := time.Now().Add(brokertest.WaitTimeout)
	for time.Now().Before(deadline) {
		p := mustPublish(t, pub, ch, `"probe"`)
		arrived := func() bool {
			for _, d := range rec.Publications(ch) {
				if d.Position() == p.Position() {
					return true
				}
			}
			return false
		}
		if rec.Await(300*time.Millisecond, arrived) {
			return p.Publication
		}
	}
	t.Fatalf("no publication to %q was delivered within %v", ch, brokertest.WaitTimeout)
	return nil
}

// assertInOrder checks that deliveries of one channel never go backwards or
// repeat within an epoch, whatever was lost.
func assertInOrder(t *testing.T, ps []*session.Publication) {
	t.Helper()
	for i := 1; i < len(ps); i++ {
		if ps[i].Epoch == ps[i-1].Epoch && ps[i].Offset <= ps[i-1].Offset {
			t.Fatalf("delivery %d at %v after %v", i, ps[i].Position(), ps[i-1].Position())
		}
	}
}

func TestPubSubConnectionKilled(t *testing.T) {
	ctx := context.Background()
	url, _ := brokertest.StartRedis(t)
	b := newTestBroker(t, url, Config{})
	rec := recordOn(t, b, "k")
	first := mustPublish(t, b, "k", `1`)
	rec.WaitPublications(t, "k", 1)

	n, err := b.client.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
	if err != nil || n != 1 {
		t.Fatalf("CLIENT KILL TYPE pubsub: killed %d, %v", n, err)
	}
	meanwhile := mustPublish(t, b, "k", `2`)
	rec.WaitGap(t, "k")
	p := publishUntilDelivered(t, b, rec, "k")
	assertInOrder(t, rec.Publications("k"))

	// Only live delivery was interrupted: history has everything, so the
	// sessions made to resume are recovered.
	res, err := b.History(ctx, "k", session.HistoryQuery{Since: ptr(first.Position()), Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Recoverable || res.Top.Epoch != first.Epoch || len(res.Publications) == 0 ||
		res.Publications[0].Position() != meanwhile.Position() || res.Top != p.Position() {
		t.Fatalf("history after the reconnect: recoverable %v, top %v", res.Recoverable, res.Top)
	}
}

func TestRedisRestart(t *testing.T) {
	ctx := context.Background()
	srv := brokertest.StartRedisServer(t)
	b := newTestBroker(t, srv.URL(), Config{})
	rec := recordOn(t, b, "x")
	before := mustPublish(t, b, "x", `1`)
	rec.WaitPublications(t, "x", 1)
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("ready while Redis is up: %v", err)
	}

	srv.Stop()
	if err := b.Ready(ctx); err == nil {
		t.Fatal("ready while Redis is down")
	}
	rec.WaitGap(t, "x")
	if _, err := b.Publish(ctx, "x", json.RawMessage(`2`), opts); err == nil {
		t.Fatal("publish succeeded while Redis is down")
	}
	if err := b.Subscribe(ctx, "y"); err == nil {
		t.Fatal("subscribe succeeded while Redis is down")
	}

	srv.Restart()
	waitReady(t, b)
	// Redis kept nothing: the channel restarts in a new epoch, which is how
	// clients learn that history was lost (subscribed with recovered:false).
	after := mustPublish(t, b, "x", `3`)
	if after.Epoch == before.Epoch || after.Offset != 1 {
		t.Fatalf("after the restart publish got %v; before it %v", after.Position(), before.Position())
	}
	res, err := b.History(ctx, "x", session.HistoryQuery{Since: ptr(before.Position()), Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Recoverable || res.Top != after.Position() {
		t.Fatalf("resume from before the restart: recoverable %v, top %v", res.Recoverable, res.Top)
	}
	// The subscription survived the restart.
	p := publishUntilDelivered(t, b, rec, "x")
	if p.Epoch != after.Epoch {
		t.Fatalf("delivered %v in another epoch than %q", p.Position(), after.Epoch)
	}
	assertInOrder(t, rec.Publications("x"))
	if err := b.Subscribe(ctx, "y"); err != nil {
		t.Fatalf("subscribe after the restart: %v", err)
	}
}

func TestHalfOpenPubSubConnection(t *testing.T) {
	srv := brokertest.StartRedisServer(t)
	url := srv.URL()
	proxy := brokertest.StartProxy(t, srv.Addr())
	// The subscribing node reaches Redis through the proxy; the publisher
	// (another node) directly.
	sub := newTestBroker(t, "redis://"+proxy.Addr()+"/0", Config{Prefix: "half", pingEvery: 100 * time.Millisecond})
	pub := newTestBroker(t, url, Config{Prefix: "half"})
	rec := recordOn(t, sub, "h")
	publishUntilDelivered(t, pub, rec, "h")

	// The connections stay open but nothing gets through any more, as when
	// a NAT or load balancer forgets them: only the probe notices.
	proxy.Blackhole(brokertest.ToServer, brokertest.ToClient)
	rec.WaitGap(t, "h")
	publishUntilDelivered(t, pub, rec, "h")
	assertInOrder(t, rec.Publications("h"))
}

func TestPublishReplyLostIsNotRetried(t *testing.T) {
	ctx := context.Background()
	srv := brokertest.StartRedisServer(t)
	proxy := brokertest.StartProxy(t, srv.Addr())
	b := newTestBroker(t, "redis://"+proxy.Addr()+"/0?read_timeout=300ms", Config{})
	first := mustPublish(t, b, "once", `1`) // opens the pooled connection

	// The script reaches Redis and runs; its reply never comes back.
	proxy.Blackhole(brokertest.ToClient)
	if _, err := b.Publish(ctx, "once", json.RawMessage(`2`), opts); err == nil {
		t.Fatal("publish without a reply succeeded")
	}
	res, err := b.History(ctx, "once", session.HistoryQuery{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	// A client that sent the script again would have published it twice.
	if res.Top != (session.Position{Epoch: first.Epoch, Offset: 2}) {
		t.Fatalf("top %v after one lost reply, want offset 2", res.Top)
	}
}

func TestMetaLost(t *testing.T) {
	ctx := context.Background()
	url, _ := brokertest.StartRedis(t)
	b := newTestBroker(t, url, Config{})
	for i := 0; i < 3; i++ {
		mustPublish(t, b, "m", `1`)
	}
	old := mustPublish(t, b, "m", `4`)

	t.Run("meta and history TTLs", func(t *testing.T) {
		meta := b.client.PTTL(ctx, b.metaKey("m")).Val()
		hist := b.client.PTTL(ctx, b.historyKey("m")).Val()
		if hist <= 0 || hist > opts.HistoryTTL || meta < DefaultIdleChannelTTL-time.Minute || meta <= hist {
			t.Fatalf("history expires in %v (TTL %v), meta in %v: meta must outlive it", hist, opts.HistoryTTL, meta)
		}
	})
	t.Run("history evicted", func(t *testing.T) {
		if err := b.client.Del(ctx, b.historyKey("m")).Err(); err != nil {
			t.Fatal(err)
		}
		res, err := b.History(ctx, "m", session.HistoryQuery{Since: &session.Position{Epoch: old.Epoch, Offset: 2}, Limit: -1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Recoverable || res.Top != old.Position() {
			t.Fatalf("position behind lost history: recoverable %v, top %v", res.Recoverable, res.Top)
		}
		if p := mustPublish(t, b, "m", `5`); p.Position() != (session.Position{Epoch: old.Epoch, Offset: 5}) {
			t.Fatalf("publish after the history was evicted: %v", p.Position())
		}
	})
	t.Run("meta evicted", func(t *testing.T) {
		if err := b.client.Del(ctx, b.metaKey("m")).Err(); err != nil {
			t.Fatal(err)
		}
		p := mustPublish(t, b, "m", `1`)
		if p.Epoch == old.Epoch || p.Offset != 1 {
			t.Fatalf("publish after the meta was evicted: %v", p.Position())
		}
		res, err := b.History(ctx, "m", session.HistoryQuery{Limit: -1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Top != p.Position() || len(res.Publications) != 1 || res.Publications[0].Position() != p.Position() {
			t.Fatalf("history of the new epoch mixes in the old one: top %v, %d entries", res.Top, len(res.Publications))
		}
	})
}

func TestSubscribeRefused(t *testing.T) {
	ctx := context.Background()
	url, _ := brokertest.StartRedis(t)
	admin := newTestBroker(t, url, Config{})
	// Redis 7 users get no pub/sub channels unless granted.
	if err := admin.client.Do(ctx, "ACL", "SETUSER", "nopubsub", "on", ">secret", "~*", "+@all", "resetchannels").Err(); err != nil {
		t.Skipf("this Redis has no channel ACLs: %v", err)
	}
	b := newTestBroker(t, strings.Replace(url, "redis://", "redis://nopubsub:secret@", 1), Config{Prefix: "acl"})
	err := b.Subscribe(ctx, "c")
	if err == nil {
		t.Fatal("subscribe succeeded although Redis refused it")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error shows the password: %v", err)
	}
	if _, err := b.Publish(ctx, "c", json.RawMessage(`1`), opts); err == nil {
		t.Fatal("publish succeeded although Redis refused PUBLISH")
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	url, _ := brokertest.StartRedis(t)
	b := newTestBroker(t, url, Config{})
	if err := b.Subscribe(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := b.Publish(ctx, "c", json.RawMessage(`1`), opts); err == nil {
		t.Fatal("publish after close succeeded")
	}
	if err := b.Subscribe(ctx, "d"); err == nil {
		t.Fatal("subscribe after close succeeded")
	}
	if err := b.Ready(ctx); err == nil {
		t.Fatal("ready after close")
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name, url string
		wantErr   bool
	}{
		{"plain", "redis://127.0.0.1:1/0", false},
		{"password and TLS", "rediss://:pw@127.0.0.1:1/2", false},
		{"empty", "", true},
		{"wrong scheme", "http://:hunter2@127.0.0.1:1", true},
		{"bad database", "redis://:hunter2@127.0.0.1:1/notanumber", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(Config{URL: tt.url, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
			if (err != nil) != tt.wantErr {
				t.Fatalf("New(%q): %v", tt.url, err)
			}
			if err != nil {
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			defer b.Close()
			if b.prefix != DefaultPrefix+":" || b.idleTTL != DefaultIdleChannelTTL {
				t.Fatalf("defaults: prefix %q, idle TTL %v", b.prefix, b.idleTTL)
			}
			// Nothing listens on port 1.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if err := b.Ready(ctx); err == nil {
				t.Fatal("ready without a server")
			}
		})
	}
}

func TestHistoryOfUnknownChannelKeepsItsPosition(t *testing.T) {
	// History of a channel never published creates its position once; it is
	// kept for the idle TTL, like the memory broker's.
	ctx := context.Background()
	url, _ := brokertest.StartRedis(t)
	b := newTestBroker(t, url, Config{IdleChannelTTL: 10 * time.Minute})
	res, err := b.History(ctx, "empty", session.HistoryQuery{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	ttl := b.client.PTTL(ctx, b.metaKey("empty")).Val()
	if ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("meta of a channel only read expires in %v, want the idle TTL", ttl)
	}
	keys := b.client.Keys(ctx, b.prefix+"*").Val()
	slices.Sort(keys)
	// The lineage hash names the data set's generation (see doc.go).
	if !slices.Equal(keys, []string{b.lineageKey("empty"), b.metaKey("empty")}) || res.Top.Offset != 0 {
		t.Fatalf("keys %v, top %v", keys, res.Top)
	}
}

func ptr[T any](v T) *T { return &v }
