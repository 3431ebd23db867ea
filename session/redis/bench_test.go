package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/session/brokertest"
)

// payload100 is a 100-byte JSON string.
var payload100 = json.RawMessage(`"` + strings.Repeat("x", 98) + `"`)

type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) HandlePublication(*session.Publication) { h.n.Add(1) }
func (h *countingHandler) HandleGap(string)                       {}

// BenchmarkRedisPublish measures publishes per second through one broker to
// one local Redis, with the broker subscribed so that delivery is included.
// It reports publishes/s and the Redis CPU time per publish (steadier than
// the rate on a shared machine, and what bounds one Redis: a core gives
// about 1e6 / redis-cpu-µs/publish publishes per second); compare runs with
// benchstat.
func BenchmarkRedisPublish(b *testing.B) {
	url, _ := brokertest.StartRedis(b)
	for _, channels := range []int{1, 64} {
		b.Run(fmt.Sprintf("channels=%d", channels), func(b *testing.B) {
			br := newTestBroker(b, url, Config{})
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
		})
	}
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

// redisCPU returns the CPU time the Redis server has used, user and system.
func redisCPU(b *testing.B, br *Broker) time.Duration {
	var total float64
	for _, f := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, err := strconv.ParseFloat(infoField(b, br, "cpu", f), 64)
		if err != nil {
			b.Fatal(err)
		}
		total += v
	}
	return time.Duration(total * float64(time.Second))
}

func infoField(b *testing.B, br *Broker, section, field string) string {
	info, err := br.client.Info(context.Background(), section).Result()
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
