package session

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
)

// BenchmarkSubscribeAndDrop is issue 21's anonymous channel flood: sessions
// that each subscribe 125 distinct new channels and close, through the node,
// the hub and the memory broker (the path every transport takes once a
// subscribe frame is decoded). One op is one subscribe-and-drop of a new
// channel. It reports the heap in use and the process's RSS, both after
// garbage collection, before the first op and after the last, so
//
//	go test -run '^$' -bench SubscribeAndDrop -benchtime 1000000x ./session/
//
// shows what a million distinct channels leave behind.
func BenchmarkSubscribeAndDrop(b *testing.B) {
	node := newTestNode(b, Config{})
	ctx := context.Background()
	const perSession = 125
	heap0, rss0 := settledMemory(b)
	var s *Session
	i := 0
	for b.Loop() {
		if i%perSession == 0 {
			if s != nil {
				s.Close(Disconnect{})
			}
			var err error
			if s, err = node.NewSession("test"); err != nil { // not mustSession: its cleanup would keep every session
				b.Fatal(err)
			}
		}
		if err := s.Subscribe(ctx, SubscribeRequest{Channel: "flood-" + strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if s != nil {
		s.Close(Disconnect{})
	}
	b.StopTimer()
	heap1, rss1 := settledMemory(b)
	b.ReportMetric(float64(heap0)/(1<<20), "heap-before-MB")
	b.ReportMetric(float64(heap1)/(1<<20), "heap-after-MB")
	b.ReportMetric(float64(rss0)/(1<<20), "rss-before-MB")
	b.ReportMetric(float64(rss1)/(1<<20), "rss-after-MB")
	b.ReportMetric(float64(heap1-heap0)/float64(i), "heap-B/channel")
}

// settledMemory returns the heap in use and the process's resident set
// after collecting garbage and returning free memory to the system.
func settledMemory(b *testing.B) (heap, rss int64) {
	b.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return int64(ms.HeapAlloc), 0 // not Linux: no RSS
	}
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			var kb int64
			if _, err := fmt.Sscan(string(v), &kb); err != nil {
				b.Fatalf("VmRSS %q: %v", v, err)
			}
			rss = kb << 10
		}
	}
	return int64(ms.HeapAlloc), rss
}
