package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// payload100 is a 100-byte JSON string.
var payload100 = json.RawMessage(`"` + strings.Repeat("x", 98) + `"`)

type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) HandlePublication(*session.Publication) { h.n.Add(1) }
func (h *countingHandler) HandleGap(string)                       {}

// BenchmarkRedisPublish measures publishes per second through one broker to
// Redis, with the broker subscribed so that delivery is included: to one
// server, and to a Cluster of 1 and of 3 masters (sharded pub/sub). It
// reports publishes/s and the Redis CPU time per publish, summed over every
// master (steadier than the rate on a shared machine, and what bounds one
// Redis: a core gives about 1e6 / redis-cpu-µs/publish publishes per
// second); compare runs with benchstat.
func BenchmarkRedisPublish(b *testing.B) {
	setups := []struct {
		name string
		cfg  func(b *testing.B) Config
	}{
		{"single", func(b *testing.B) Config {
			url, _ := brokertest.StartRedis(b)
			return Config{URL: url}
		}},
		{"cluster=1", func(b *testing.B) Config {
			return Config{ClusterAddrs: brokertest.StartRedisCluster(b, 1).Addrs()}
		}},
		{"cluster=3", func(b *testing.B) Config {
			return Config{ClusterAddrs: brokertest.StartRedisCluster(b, 3).Addrs()}
		}},
	}
	for _, setup := range setups {
		b.Run(setup.name, func(b *testing.B) {
			cfg := setup.cfg(b)
			for _, channels := range []int{1, 64} {
				b.Run(fmt.Sprintf("channels=%d", channels), func(b *testing.B) {
					benchPublish(b, newTestBroker(b, "", cfg), channels)
				})
			}
		})
	}
}

func benchPublish(b *testing.B, br *Broker, channels int) {
	h := &countingHandler{}
	br.SetHandler(h)
	for i := 0; i < channels; i++ {
		if err := br.Subscribe(context.Background(), "bench:"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	o := session.PublishOptions{HistorySize: 1000, HistoryTTL: time.Minute, KeyTTL: session.MinKeyTTL}
	var worker atomic.Int64
	b.SetParallelism(8) // 8 publishers per CPU: Redis round trips, not CPU, bound one publisher
	cpu := redisCPU(b, br)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ch := "bench:" + strconv.Itoa(int(worker.Add(1))%channels)
		for pb.Next() {
			if _, err := br.Publish(context.Background(), ch, payload100, o); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
	b.ReportMetric((redisCPU(b, br)-cpu).Seconds()*1e6/float64(b.N), "redis-cpu-µs/publish")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRedisMemoryPerMessage reports the Redis memory (INFO memory,
// used_memory) that retained history costs per 100-byte message, in one
// channel and spread over 100 channels. Run it with -benchtime=1x.
func BenchmarkRedisMemoryPerMessage(b *testing.B) {
	url, _ := brokertest.StartRedis(b)
	const messages = 10_000
	for _, channels := range []int{1, 100} {
		b.Run(fmt.Sprintf("channels=%d", channels), func(b *testing.B) {
			ctx := context.Background()
			var perMessage float64
			for i := 0; i < b.N; i++ {
				br := newTestBroker(b, url, Config{})
				before := usedMemory(b, br)
				o := session.PublishOptions{HistorySize: messages, HistoryTTL: time.Hour, KeyTTL: session.MinKeyTTL}
				for m := 0; m < messages; m++ {
					if _, err := br.Publish(ctx, "mem:"+strconv.Itoa(m%channels), payload100, o); err != nil {
						b.Fatal(err)
					}
				}
				perMessage += float64(usedMemory(b, br)-before) / messages
				if err := br.client.FlushAll(ctx).Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(perMessage/float64(b.N), "bytes/msg")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func usedMemory(b *testing.B, br *Broker) int64 {
	n, err := strconv.ParseInt(infoField(b, br, "memory", "used_memory"), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// redisCPU returns the CPU time the Redis servers (every master of a
// cluster) have used, user and system.
func redisCPU(b *testing.B, br *Broker) time.Duration {
	var total float64
	each := func(c goredis.Cmdable) {
		for _, f := range []string{"used_cpu_user", "used_cpu_sys"} {
			v, err := strconv.ParseFloat(infoFieldOf(b, c, "cpu", f), 64)
			if err != nil {
				b.Fatal(err)
			}
			total += v
		}
	}
	if cc, ok := br.client.(*goredis.ClusterClient); ok {
		var mu sync.Mutex
		_ = cc.ForEachMaster(context.Background(), func(_ context.Context, c *goredis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			each(c)
			return nil
		})
	} else {
		each(br.client)
	}
	return time.Duration(total * float64(time.Second))
}

func infoField(b *testing.B, br *Broker, section, field string) string {
	return infoFieldOf(b, br.client, section, field)
}

func infoFieldOf(b *testing.B, c goredis.Cmdable, section, field string) string {
	info, err := c.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	b.Fatalf("INFO %s has no %s", section, field)
	return ""
}
