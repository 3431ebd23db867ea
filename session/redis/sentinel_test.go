package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// sentinelSetup is a master, a replica and a Sentinel, started by the test.
type sentinelSetup struct {
	master, replica, sentinel *brokertest.RedisServer
	cfg                       Config // reaches the master through the Sentinel
}

// startSentinelSetup starts the three; replicate, when set, is the address
// the replica replicates from (a proxy in front of the master), else the
// master itself.
func startSentinelSetup(t *testing.T, replicate func(master *brokertest.RedisServer) string) *sentinelSetup {
	t.Helper()
	// A master waits 5 s by default before a full sync, for more replicas.
	master := brokertest.StartRedisServerArgs(t, "--repl-diskless-sync-delay", "0")
	from := master.Addr()
	if replicate != nil {
		from = replicate(master)
	}
	host, port, err := net.SplitHostPort(from)
	if err != nil {
		t.Fatal(err)
	}
	replica := brokertest.StartRedisServerArgs(t, "--repl-diskless-sync-delay", "0", "--replicaof", host, port)
	s := &sentinelSetup{master: master, replica: replica, sentinel: brokertest.StartSentinel(t, master)}
	s.cfg = Config{SentinelAddrs: []string{s.sentinel.Addr()}, MasterName: brokertest.SentinelMaster}
	return s
}

func TestSentinelConformance(t *testing.T) {
	s := startSentinelSetup(t, nil)
	prefix := "test-" + session.NewEpoch()
	brokertest.Run(t, func(t *testing.T) session.Broker {
		cfg := s.cfg
		cfg.Prefix = prefix + session.NewEpoch()
		return newTestBroker(t, "", cfg)
	})
}

// TestSentinelFailoverLostWrites is issue 20's case 2, made deterministic:
// the replica stops receiving the replication stream (a silent proxy),
// publications 6-10 are acknowledged by the master only, the master dies,
// and Sentinel promotes the replica, which never had them. The nodes must
// follow the failover by themselves, must not acknowledge offsets 6-10
// again in the old epoch, and a client at offset 10 must be told
// recovered:false; live delivery must resume in the new epoch.
func TestSentinelFailoverLostWrites(t *testing.T) {
	ctx := context.Background()
	var repl *brokertest.Proxy
	s := startSentinelSetup(t, func(m *brokertest.RedisServer) string {
		repl = brokertest.StartProxy(t, m.Addr())
		return repl.Addr()
	})
	prefix := "test-" + session.NewEpoch()
	cfg := s.cfg
	cfg.Prefix = prefix
	pub := newTestBroker(t, "", cfg)
	sub := newTestBroker(t, "", cfg)
	rec := recordOn(t, sub, "f")
	acked := map[session.Position]int{}
	ack := func(rs []session.PublishResult) {
		for _, r := range rs {
			acked[r.Position()]++
			if acked[r.Position()] > 1 {
				t.Fatalf("%v acknowledged twice", r.Position())
			}
		}
	}
	first := publishRange(t, pub, "f", 1, 5)
	ack(first)
	waitReplicated(t, pub)
	repl.Blackhole(brokertest.ToServer, brokertest.ToClient)
	last := publishRange(t, pub, "f", 6, 10)
	ack(last)
	rec.WaitPublications(t, "f", 10)

	killed := time.Now()
	s.master.Stop()
	// Publish as a backend would, retrying each failure with the same
	// idempotency key, until the nodes write to the new master.
	var after []session.PublishResult
	for i := 11; i <= 15; i++ {
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, err := pub.Publish(ctx, "f", json.RawMessage(fmt.Sprint(i)), session.PublishOptions{
				HistorySize: 100, HistoryTTL: time.Minute, KeyTTL: session.MinKeyTTL, Key: fmt.Sprint("k", i)})
			if err == nil {
				after = append(after, r)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("publish %d after the failover: %v", i, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if i == 11 {
			t.Logf("first publish acknowledged by the new master %v after the kill", time.Since(killed).Round(time.Millisecond))
		}
	}
	ack(after)
	if after[0].Epoch == first[0].Epoch {
		t.Fatalf("the promoted replica continued epoch %s at %v: offsets 6-10 were acknowledged by the old master", first[0].Epoch, after[0].Position())
	}
	res, err := pub.History(ctx, "f", session.HistoryQuery{Since: ptr(last[4].Position()), Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Recoverable {
		t.Fatalf("a client at %v is told recovered:true after losing 6-10", last[4].Position())
	}
	// The subscribing node lost its pub/sub connection with the master,
	// reported the gap and follows the new master.
	rec.WaitGap(t, "f")
	p := publishUntilDelivered(t, pub, rec, "f")
	if p.Epoch != after[0].Epoch {
		t.Fatalf("delivered %v, not in the new epoch %s", p.Position(), after[0].Epoch)
	}
	assertInOrder(t, rec.Publications("f"))
}

// TestSentinelGracefulFailoverMovesPubSub: after SENTINEL FAILOVER the old
// master stays up, a master, until Sentinel gets round to demoting it (about
// 10 s; here never, as the Sentinel is stopped first). The node's pub/sub
// connection, still open on it, would hear nothing of what is published on
// the new master: the broker must move it there once it sees the new
// master, and report the gap.
func TestSentinelGracefulFailoverMovesPubSub(t *testing.T) {
	ctx := context.Background()
	s := startSentinelSetup(t, nil)
	cfg := s.cfg
	cfg.Prefix = "test-" + session.NewEpoch()
	sub := newTestBroker(t, "", cfg)
	rec := recordOn(t, sub, "g")
	mustPublish(t, sub, "g", `1`)
	rec.WaitPublications(t, "g", 1)
	waitReplicated(t, sub)

	onReplica := newTestBroker(t, s.replica.URL(), Config{Prefix: cfg.Prefix})
	replicaInfo, err := inspect(ctx, onReplica.client)
	if err != nil {
		t.Fatal(err)
	}
	sc := goredisSentinel(s.sentinel.Addr())
	defer sc.Close()
	// The Sentinel needs a moment to discover the replica (NOGOODSLAVE).
	brokertest.Eventually(t, func() error {
		if err := sc.Failover(ctx, brokertest.SentinelMaster).Err(); err != nil {
			return fmt.Errorf("SENTINEL FAILOVER: %w", err)
		}
		return nil
	})
	// Wait until the node talks to the new master (the replica promoted:
	// its replication id changed from the one it had as a replica).
	brokertest.Eventually(t, func() error {
		infos, err := sub.inspectAll(ctx)
		if err != nil || infos[0].role != "master" || infos[0].id == replicaInfo.id || !infos[0].promoted {
			return fmt.Errorf("the node did not follow the failover: %v %v", infos, err)
		}
		return nil
	})
	s.sentinel.Stop() // the old master is never demoted
	oc := goredisClient(s.master.Addr())
	defer oc.Close()
	old, err := inspect(ctx, oc)
	if err != nil || old.role != "master" {
		t.Fatalf("the old master: role %q, %v", old.role, err)
	}
	rec.WaitGap(t, "g")
	p := publishUntilDelivered(t, onReplica, rec, "g")
	t.Logf("delivered %v from the new master", p.Position())
}

func goredisSentinel(addr string) *goredis.SentinelClient {
	return goredis.NewSentinelClient(&goredis.Options{Addr: addr})
}

func goredisClient(addr string) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: addr})
}
