package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// waitReady waits until b reports ready, as a node's readiness probe does
// after Redis comes back.
func waitReady(t *testing.T, b *Broker) {
	t.Helper()
	brokertest.Eventually(t, func() error {
		if err := b.Ready(context.Background()); err != nil {
			return fmt.Errorf("not ready: %w", err)
		}
		return nil
	})
}

func publishRange(t *testing.T, b *Broker, ch string, from, to int) []session.PublishResult {
	t.Helper()
	var out []session.PublishResult
	for i := from; i <= to; i++ {
		out = append(out, mustPublish(t, b, ch, fmt.Sprint(i)))
	}
	return out
}

// TestRestartFromPersistence is the deterministic case and its
// neighbours: publish 1-5, SAVE, publish 6-10, kill -9 Redis, restart it
// from what it persisted, publish 11-15. Where Redis may have lost
// acknowledged writes the channel must start a new epoch (so that nobody is
// told recovered:true over offsets that are reused); where it cannot have,
// the epoch continues and history still covers the old positions.
func TestRestartFromPersistence(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		lower bool // appendfsync everysec for a while before the crash
		cont  bool
	}{
		// Debian's default: snapshots only. The snapshot holds 1-5 and the
		// epoch; 6-10 were acknowledged and lost.
		{"RDB snapshot", nil, false, false},
		// Up to a second of writes may be lost: nothing tells which.
		{"AOF everysec", []string{"--appendonly", "yes", "--appendfsync", "everysec"}, false, false},
		// Every acknowledged write is on disk: no needless recovered:false.
		{"AOF always", []string{"--appendonly", "yes", "--appendfsync", "always"}, false, true},
		// Writes made while it ran everysec may be lost, even though the
		// setting was put back before the crash.
		{"AOF always, everysec for a while", []string{"--appendonly", "yes", "--appendfsync", "always"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			srv := brokertest.StartRedisServerArgs(t, tt.args...)
			b := newTestBroker(t, srv.URL(), Config{})
			first := publishRange(t, b, "s", 1, 5)
			if err := b.client.Save(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			setFsync := func(v string) {
				t.Helper()
				if err := b.client.ConfigSet(ctx, "appendfsync", v).Err(); err != nil {
					t.Fatal(err)
				}
				waitReady(t, b) // inspects the server again
			}
			if tt.lower {
				setFsync("everysec")
			}
			acked := publishRange(t, b, "s", 6, 10)
			if tt.lower {
				setFsync("always")
			}
			epoch := first[0].Epoch
			if acked[4].Position() != (session.Position{Epoch: epoch, Offset: 10}) {
				t.Fatalf("before the restart: %v", acked[4].Position())
			}

			srv.Stop() // SIGKILL: no save on the way out
			srv.Restart()
			waitReady(t, b)
			after := publishRange(t, b, "s", 11, 15)
			res, err := b.History(ctx, "s", session.HistoryQuery{Since: ptr(acked[4].Position()), Limit: -1})
			if err != nil {
				t.Fatal(err)
			}
			if tt.cont {
				if after[0].Position() != (session.Position{Epoch: epoch, Offset: 11}) {
					t.Fatalf("durable Redis: the first publish after the restart got %v, want %s/11", after[0].Position(), epoch)
				}
				if !res.Recoverable || len(res.Publications) != 5 || res.Publications[0].Offset != 11 {
					t.Fatalf("durable Redis: history since 10: recoverable %v, %d publications", res.Recoverable, len(res.Publications))
				}
				return
			}
			for _, p := range after {
				if p.Epoch == epoch {
					t.Fatalf("offset %d acknowledged again in epoch %s after a restart that lost writes", p.Offset, epoch)
				}
			}
			if after[0].Offset != 1 {
				t.Fatalf("new epoch starts at %d", after[0].Offset)
			}
			if res.Recoverable || res.Top != after[4].Position() {
				t.Fatalf("history since %v: recoverable %v, top %v; want recovered:false at %v",
					acked[4].Position(), res.Recoverable, res.Top, after[4].Position())
			}
		})
	}
}

// TestPromotedReplicaStartsNewEpochs: Redis replication is asynchronous, so
// a replica promoted by a failover may lack acknowledged writes, even with
// AOF and appendfsync always on both.
func TestPromotedReplicaStartsNewEpochs(t *testing.T) {
	ctx := context.Background()
	durable := []string{"--appendonly", "yes", "--appendfsync", "always"}
	// A master waits 5 s by default before a full sync, for more replicas.
	master := brokertest.StartRedisServerArgs(t, append(durable, "--repl-diskless-sync-delay", "0")...)
	replica := brokertest.StartRedisServerArgs(t, append(durable, "--replicaof", "127.0.0.1", fmt.Sprint(master.Port()))...)
	prefix := "test-" + session.NewEpoch()
	b := newTestBroker(t, master.URL(), Config{Prefix: prefix})
	before := publishRange(t, b, "f", 1, 5)
	waitReplicated(t, b)
	// Even the writes that reached the replica are not trusted after the
	// promotion: which writes did is not known.
	master.Stop()
	r := newTestBroker(t, replica.URL(), Config{Prefix: prefix})
	if err := r.client.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, r)
	res, err := r.History(ctx, "f", session.HistoryQuery{Since: ptr(before[4].Position()), Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Recoverable || res.Top.Epoch == before[0].Epoch {
		t.Fatalf("after the promotion: recoverable %v, top %v; before it %v", res.Recoverable, res.Top, before[4].Position())
	}
	if p := mustPublish(t, r, "f", "6"); p.Position() != (session.Position{Epoch: res.Top.Epoch, Offset: 1}) {
		t.Fatalf("publish after the promotion: %v, want %s/1", p.Position(), res.Top.Epoch)
	}
}

// TestDemotedMasterPromotedAgain: a master that becomes a replica, resyncs
// and is promoted again keeps its process, but its data now came from the
// other server; its new replication id tells.
func TestDemotedMasterPromotedAgain(t *testing.T) {
	ctx := context.Background()
	a := brokertest.StartRedisServerArgs(t, "--repl-diskless-sync-delay", "0")
	bsrv := brokertest.StartRedisServerArgs(t, "--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", fmt.Sprint(a.Port()))
	prefix := "test-" + session.NewEpoch()
	onA := newTestBroker(t, a.URL(), Config{Prefix: prefix})
	before := publishRange(t, onA, "d", 1, 3)
	waitReplicated(t, onA)
	onB := newTestBroker(t, bsrv.URL(), Config{Prefix: prefix})
	// B is promoted and A follows it; nothing touches channel d meanwhile.
	if err := onB.client.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	if err := onA.client.Do(ctx, "REPLICAOF", "127.0.0.1", fmt.Sprint(bsrv.Port())).Err(); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, func() error {
		if !containsLine(onA.client.Info(ctx, "replication").Val(), "master_link_status:up") {
			return errors.New("A did not sync from B")
		}
		return nil
	})
	if err := onA.client.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, onA)
	p := mustPublish(t, onA, "d", "4")
	if p.Epoch == before[0].Epoch {
		t.Fatalf("A promoted again continued epoch %s at %v", before[0].Epoch, p.Position())
	}
}

// waitReplicated waits until a replica has every write made through b.
func waitReplicated(t *testing.T, b *Broker) {
	t.Helper()
	brokertest.Eventually(t, func() error {
		if n, err := b.client.Do(context.Background(), "WAIT", 1, 200).Int(); err != nil || n != 1 {
			return fmt.Errorf("WAIT 1: %d, %v", n, err)
		}
		return nil
	})
}

func containsLine(s, line string) bool {
	return slices.Contains(strings.Split(strings.ReplaceAll(s, "\r", ""), "\n"), line)
}

// TestReadyRefusesEviction: every key but the lineage hash has a TTL, so
// volatile-* policies evict them as readily as allkeys-*; only noeviction,
// or no maxmemory at all, keeps idempotency keys and history. Ready
// inspects the server each time, so a CONFIG SET is seen by the next probe.
func TestReadyRefusesEviction(t *testing.T) {
	ctx := context.Background()
	srv := brokertest.StartRedisServer(t)
	b := newTestBroker(t, srv.URL(), Config{})
	allow := newTestBroker(t, srv.URL(), Config{AllowEviction: true})
	tests := []struct {
		maxmemory, policy string
		ready             bool
	}{
		{"0", "allkeys-lru", true}, // no limit: nothing is ever evicted
		{"64mb", "noeviction", true},
		{"64mb", "allkeys-lru", false},
		{"64mb", "allkeys-lfu", false},
		{"64mb", "allkeys-random", false},
		{"64mb", "volatile-lru", false},
		{"64mb", "volatile-ttl", false},
	}
	for _, tt := range tests {
		t.Run(tt.maxmemory+" "+tt.policy, func(t *testing.T) {
			if err := b.client.ConfigSet(ctx, "maxmemory", tt.maxmemory).Err(); err != nil {
				t.Fatal(err)
			}
			if err := b.client.ConfigSet(ctx, "maxmemory-policy", tt.policy).Err(); err != nil {
				t.Fatal(err)
			}
			err := b.Ready(ctx)
			if tt.ready != (err == nil) {
				t.Fatalf("Ready = %v, want ready %v", err, tt.ready)
			}
			if err != nil && !strings.Contains(err.Error(), "maxmemory-policy "+tt.policy) {
				t.Fatalf("Ready does not name the policy: %v", err)
			}
			if err := allow.Ready(ctx); err != nil {
				t.Fatalf("Ready with AllowEviction = %v", err)
			}
		})
	}
}
