package poll

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strconv"
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
	e := newEnv(b, envConfig{Options: Options{Timeout: hour, Detach: time.Nanosecond}, Reuse: true})
	cursor := *e.poll(b, query("channel", "idle")).Cursor
	e.WaitSessions(b, 0)
	created := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	var goroutines float64
	var elapsed time.Duration
	for i := range b.N {
		conns := holdPolls(b, e, cursor, polls)
		b.StartTimer()
		metrics.Read(created)
		start, before := time.Now(), created[0].Value.Uint64()
		if _, err := e.Node.Publish(context.Background(), "idle", json.RawMessage(`1`), ""); err != nil {
			b.Fatal(err)
		}
		for _, c := range conns {
			res, _, err := c.Answer()
			if err != nil {
				b.Fatal(err)
			}
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
		e.WaitSessions(b, 0)
		cursor = *e.poll(b, query("channel", "idle", "cursor", cursor)).Cursor
		e.WaitSessions(b, 0)
	}
	b.ReportMetric(goroutines/float64(b.N*polls), "goroutines/answer")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*polls), "ns/answer")
}

// BenchmarkPollCycle is one long-poll cycle on net/http, the path of every
// poll on a busy channel (S6): a poll with a cursor waits on its handler, a
// publish answers it (after Options.Linger), and the client's next poll
// follows. ns/op is mostly the linger; B/op and allocs/op (client and
// server together) are what one poll costs the process.
func BenchmarkPollCycle(b *testing.B) {
	e := newEnv(b, envConfig{Options: Options{Timeout: hour}})
	get := func(cursor string) string {
		q := url.Values{"channel": {"c"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		res, err := e.client.Get(e.Srv.URL + "/connect/poll?" + q.Encode())
		if err != nil {
			b.Error(err)
			return ""
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var a struct{ Cursor string }
		if err := json.Unmarshal(body, &a); err != nil || a.Cursor == "" {
			b.Errorf("answer %q: %v", body, err)
		}
		return a.Cursor
	}
	cursor := get("")
	e.WaitSessions(b, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		done := make(chan string)
		go func() { done <- get(cursor) }()
		for e.Node.SessionCount() == 0 {
			runtime.Gosched()
		}
		if _, err := e.Node.Publish(context.Background(), "c", json.RawMessage(strconv.Itoa(i)), ""); err != nil {
			b.Fatal(err)
		}
		if cursor = <-done; cursor == "" {
			b.FailNow()
		}
		e.WaitSessions(b, 0)
	}
}
