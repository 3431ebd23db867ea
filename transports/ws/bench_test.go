package ws

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

// BenchmarkFanout measures publish → delivered to every subscriber of one
// channel over real loopback connections. One op is one publication
// delivered to all subscribers; deliveries/s is the rate that matters.
func BenchmarkFanout(b *testing.B) {
	for _, subs := range []int{100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			e := newEnv(b, envConfig{Node: session.Config{Limits: session.Limits{MaxQueueBytes: 64 << 20}}})
			done := make(chan error, subs)
			clients := make([]*client, subs)
			for i := range clients {
				clients[i], _ = e.dial(b, dialOptions{})
				clients[i].Subscribe(1, "fan", nil)
			}
			n := b.N
			for _, c := range clients {
				go func() { done <- readMessages(c, n) }()
			}
			data := json.RawMessage(`{"text":"a typical small notification payload","id":12345}`)
			b.ResetTimer()
			for range n {
				if _, err := e.Node.Publish(context.Background(), "fan", data, ""); err != nil {
					b.Fatal(err)
				}
			}
			for range subs {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(n*subs)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// readMessages reads until n message frames have arrived, decoding only
// what it must; it runs outside the test goroutine, so it returns errors.
func readMessages(c *client, n int) error {
	got := 0
	for got < n {
		_ = c.Conn.SetReadDeadline(time.Now().Add(wiretest.WaitLimit))
		_, data, err := c.Conn.ReadMessage()
		if err != nil {
			return err
		}
		got += strings.Count(string(data), `"type":"message"`)
	}
	return nil
}

// BenchmarkIdleMemory reports the memory an idle WebSocket connection costs
// the process: heap and stacks after min(b.N, 5000) connections have said
// hello, divided by their number. The clients are raw sockets that hold no
// goroutine, so nearly all of it is the server side. Run with
// -benchtime=5000x for a stable figure.
func BenchmarkIdleMemory(b *testing.B) {
	e := newEnv(b, envConfig{})
	conns := min(b.N, 5000)
	addr := strings.TrimPrefix(e.Srv.URL, "http://")
	held := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	before := memInUse()
	for range conns {
		c, err := rawHandshake(addr)
		if err != nil {
			b.Fatal(err)
		}
		_ = c.SetDeadline(time.Time{})
		held = append(held, c.Conn) // not its read buffer: the client side should cost next to nothing

	}
	e.WaitSessions(b, conns)
	after := memInUse()
	b.ReportMetric(float64(after-before)/float64(conns), "B/conn")
	b.ReportMetric(0, "ns/op")
}

func memInUse() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// rawHandshake opens a WebSocket connection with nothing but a socket and
// reads the 101 response and the hello frame. Reads and writes must end
// within wiretest.WaitLimit.
func rawHandshake(addr string) (*wiretest.RawConn, error) {
	c, err := wiretest.DialRaw(addr)
	if err != nil {
		return nil, err
	}
	err = c.UpgradeWS("/connect/ws")
	if err == nil {
		var op byte
		var hello []byte
		op, hello, err = c.ReadFrame()
		if err == nil && (op != websocket.TextMessage || !strings.Contains(string(hello), `"type":"hello"`)) {
			err = fmt.Errorf("first frame %d %q, want the hello", op, hello)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
