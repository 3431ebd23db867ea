package server

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/wiretest"
)

// BenchmarkWebSocketChannelFlood is issue 21's subscribe-and-drop flood
// over real WebSockets from one address: each connection subscribes 125
// channel names never used before (one frame of 100 commands, one of 25),
// waits for the 125 subscribed frames and closes. One op is one channel.
// Limits are the defaults except the rate of new connections, which would
// only stretch the run (8,000 connections per million channels at 100 a
// second). It reports heap and RSS of the process (server and client; the
// client keeps nothing between connections) after GC, before the first op
// and once every session has ended, and the broker's channel count then:
//
//	go test -run '^$' -bench WebSocketChannelFlood -benchtime 1000000x ./server/
func BenchmarkWebSocketChannelFlood(b *testing.B) {
	cfg := Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.RateLimits.ConnectsPerSecond = NoLimit
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	url := wsURL(wiretest.Serve(b, s).URL, "/connect/ws")
	const perConn = 125
	heap0, rss0 := settledMemory()
	var frame bytes.Buffer
	op, i := 0, 0 // ops done, channels subscribed
	for b.Loop() {
		op++
		if op <= i {
			continue // subscribed already, by the last connection
		}
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{100, perConn - 100} {
			frame.Reset()
			for range n {
				fmt.Fprintf(&frame, `{"type":"subscribe","channel":"flood-%d"}`+"\n", i)
				i++
			}
			if err := conn.WriteMessage(websocket.TextMessage, frame.Bytes()); err != nil {
				b.Fatal(err)
			}
		}
		for got := 0; got < perConn; {
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, msg, err := conn.ReadMessage()
			if err != nil {
				b.Fatalf("after %d subscribed frames: %v", got, err)
			}
			if bytes.Contains(msg, []byte(`"type":"error"`)) {
				b.Fatalf("refused: %s", msg)
			}
			got += bytes.Count(msg, []byte(`"type":"subscribed"`))
		}
		conn.Close()
	}
	b.StopTimer()
	for deadline := time.Now().Add(10 * time.Second); s.node.SessionCount() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	heap1, rss1 := settledMemory()
	b.ReportMetric(float64(heap0)/(1<<20), "heap-before-MB")
	b.ReportMetric(float64(heap1)/(1<<20), "heap-after-MB")
	b.ReportMetric(float64(rss0)/(1<<20), "rss-before-MB")
	b.ReportMetric(float64(rss1)/(1<<20), "rss-after-MB")
	if mb, ok := s.broker.(interface{ ChannelCount() int }); ok {
		b.ReportMetric(float64(mb.ChannelCount()), "channels-held")
	}
	b.ReportMetric(float64(s.node.SessionCount()), "sessions-left")
}

// settledMemory returns the heap in use and the process's resident set, in
// bytes, after collecting garbage and returning free memory to the system.
func settledMemory() (heap, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, _ := os.ReadFile("/proc/self/status") // not Linux: RSS 0
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	return int64(ms.HeapAlloc), rss
}
