package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// BenchmarkRedisPresence measures the Redis cost of presence in a channel of
// 10,000 clients: per join (one script: HLEN, HSET, SET and, within the
// join/leave limit, a PUBLISH), the Redis memory per entry, and one read of
// the whole presence (HGETALL) and of its stats (HVALS). Run it with
// -benchtime=1x: each iteration builds the 10,000 entries.
func BenchmarkRedisPresence(b *testing.B) {
	url, _ := brokertest.StartRedis(b)
	const clients = 10_000
	ctx := context.Background()
	opts := session.PresenceOptions{Max: clients, Notify: session.DefaultJoinLeaveLimit}
	var joinNs, joinCPU, perEntry, readNs, statsNs float64
	for i := 0; i < b.N; i++ {
		br := newTestBroker(b, url, Config{})
		before, cpu := usedMemory(b, br), redisCPU(b, br)
		start := time.Now()
		for c := 0; c < clients; c++ {
			info := session.ClientInfo{Client: "client-" + strconv.Itoa(100000+c), User: "user-" + strconv.Itoa(c%5000)}
			if _, err := br.AddPresence(ctx, "room", info, opts); err != nil {
				b.Fatal(err)
			}
		}
		joinNs += float64(time.Since(start).Nanoseconds()) / clients
		joinCPU += float64((redisCPU(b, br) - cpu).Microseconds()) / clients
		perEntry += float64(usedMemory(b, br)-before) / clients
		start = time.Now()
		list, err := br.Presence(ctx, "room")
		if err != nil || len(list) != clients {
			b.Fatalf("presence: %d entries, %v", len(list), err)
		}
		readNs += float64(time.Since(start).Nanoseconds())
		start = time.Now()
		if st, err := br.PresenceStats(ctx, "room"); err != nil || st.Clients != clients {
			b.Fatalf("stats %+v %v", st, err)
		}
		statsNs += float64(time.Since(start).Nanoseconds())
		if err := br.client.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(joinNs/n/1e3, "µs/join")
	b.ReportMetric(joinCPU/n, "redis-cpu-µs/join")
	b.ReportMetric(perEntry/n, "redis-bytes/entry")
	b.ReportMetric(readNs/n/1e6, "ms/presence-10k")
	b.ReportMetric(statsNs/n/1e6, "ms/stats-10k")
	b.ReportMetric(0, "ns/op")
}
