package poll

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime/metrics"
	"testing"
	"time"
)

// BenchmarkHeldPollAnswer holds 1,000 polls off net/http (Detach: 1ns),
// publishes one message and reads every answer, and reports what answering
// a held poll costs: the goroutines the process starts per answer (the
// pump's, the linger timer's, the HTTP server's for the connection handed
// back) besides the time. It is how docs/BENCHMARKS.md counts them:
//
//	go test -run '^$' -bench HeldPollAnswer ./transports/poll/
func BenchmarkHeldPollAnswer(b *testing.B) {
	const polls = 1000
	e := newEnv(b, envConfig{opts: Options{Timeout: hour, Detach: time.Nanosecond}, reuse: true})
	cursor := *e.poll(b, query("channel", "idle")).Cursor
	e.waitSessions(b, 0)
	created := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	var goroutines float64
	var elapsed time.Duration
	for i := range b.N {
		conns := holdPolls(b, e, cursor, polls)
		b.StartTimer()
		metrics.Read(created)
		start, before := time.Now(), created[0].Value.Uint64()
		if _, err := e.node.Publish(context.Background(), "idle", json.RawMessage(`1`), ""); err != nil {
			b.Fatal(err)
		}
		for _, c := range conns {
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatalf("answer %d: status %d", i, res.StatusCode)
			}
		}
		elapsed += time.Since(start)
		metrics.Read(created)
		goroutines += float64(created[0].Value.Uint64() - before)
		b.StopTimer()
		for _, c := range conns {
			c.Close()
		}
		e.waitSessions(b, 0)
		cursor = *e.poll(b, query("channel", "idle", "cursor", cursor)).Cursor
		e.waitSessions(b, 0)
	}
	b.ReportMetric(goroutines/float64(b.N*polls), "goroutines/answer")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*polls), "ns/answer")
}
