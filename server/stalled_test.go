package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

// A client that stops reading without closing, on SSE, a held long-poll or
// a SockJS stream (xhr-streaming, eventsource, htmlfile), while a
// publisher goes on at a low rate (10 messages/s of 200 bytes) and a high
// one (100/s of 4 KB): each is dropped within the stall bound, no socket of
// it is left on the server in any state (FIN-WAIT included), its session
// and memory are released, and a healthy client beside them gets every
// message. The bound is StallTimeout after the client's receive window
// closes; the stalled clients' receive buffers are small, so that their
// windows close within a few seconds even at the low rate.
func TestStalledReadersAreDroppedWithinTheBound(t *testing.T) {
	const stallTimeout = 2 * time.Second
	cfg := quietConfig()
	cfg.StallTimeout = stallTimeout
	// The low rate fills a stalled client's receive window (a few KB) in
	// about four seconds, then StallTimeout; plus slack for the kernel's
	// probe timer and a loaded machine.
	bound := 4*time.Second + stallTimeout + 4*time.Second
	runStalled(t, cfg, []stallRate{{"low", 10, 200}, {"high", 100, 4 << 10}}, true, bound)
}

// With the stall timeout off, what ends a stalled client is the write
// timeout (its writer takes nothing for that long, the bytes beyond
// --unsent-bytes waiting in the server): on SSE and SockJS streams, whose
// connections belong to the transport and to net/http respectively, the
// connection is then aborted, so no socket of it stays in FIN-WAIT-1 behind
// what the client never read. (A held long-poll's answer is one write, and
// without the stall timeout its connection waits for the idle timeout.)
func TestGivenUpStreamsAreAborted(t *testing.T) {
	cfg := quietConfig()
	cfg.StallTimeout, cfg.UnsentBytes = -1, minUnsentBytes
	cfg.WriteTimeout = time.Second
	// One to two write timeouts without progress, with slack.
	runStalled(t, cfg, []stallRate{{"high", 100, 4 << 10}}, false, 8*time.Second)
}

type stallRate struct {
	channel  string
	perSec   int
	dataSize int
}

// runStalled runs a server with cfg, a healthy SSE reader and stalled
// clients (SSE, SockJS xhr-streaming, eventsource and htmlfile, and with
// polls a held long-poll) on each rate's channel while a publisher goes on,
// and checks that each stalled client's socket is gone from the server
// within bound, that the sessions end and the heap returns, and that the
// healthy readers get every message.
func runStalled(t *testing.T, cfg Config, rates []stallRate, polls bool, bound time.Duration) {
	cfg.RateLimits.ConnectionsPerIP = NoLimit
	// A short history: what the heap holds afterwards is then the sessions'.
	cfg.Namespaces = []session.Namespace{{HistorySize: 10, HistoryTTL: time.Minute, Anonymous: true}}
	cfg.RateLimits.ConnectsPerSecond = NoLimit
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := startServer(t, s)
	addr, serverPort := hostPort(t, base)

	// Healthy SSE readers, one per channel, read everything.
	healthy := make([]*wiretest.Stream, len(rates))
	for i, r := range rates {
		st, err := wiretest.OpenSSE(http.DefaultClient, base+"/connect/sse?channel="+r.channel, nil)
		if err != nil {
			t.Fatal(err)
		}
		healthy[i] = st
	}
	wiretest.Eventually(t, "healthy sessions", func() bool { return s.Node().SessionCount() == len(rates) })
	heapBefore := heapInUse()

	type stalledClient struct {
		name string
		conn net.Conn
		key  string // netconn.SocketKey of its address: its server socket's peer
	}
	var stalled []stalledClient
	for _, r := range rates {
		ch := r.channel
		add := func(name string, c net.Conn) {
			stalled = append(stalled, stalledClient{name + "/" + ch, c, netconn.SocketKey(c.LocalAddr())})
		}
		add("sse", dialStalled(t, addr, "GET", "/connect/sse?channel="+ch))
		if polls {
			cursor := firstPollCursor(t, base, ch)
			add("poll", dialStalled(t, addr, "GET", "/connect/poll?channel="+ch+"&cursor="+cursor))
		}
		for i, tr := range []string{"xhr_streaming", "eventsource", "htmlfile?c=cb"} {
			path := fmt.Sprintf("/connect/sockjs/000/stall%s%d", ch, i)
			method := "GET"
			if tr == "xhr_streaming" {
				method = "POST"
			}
			add("sockjs-"+strings.TrimSuffix(tr, "?c=cb"), dialStalled(t, addr, method, path+"/"+tr))
			sockjsSubscribe(t, base+path, ch)
		}
	}
	start := time.Now()
	want := len(rates) + len(rates) + 3*len(rates) // healthy, SSE, SockJS; answered polls end theirs
	wiretest.Eventually(t, "stalled sessions", func() bool { return s.Node().SessionCount() >= want })

	// Publish at both rates until every stalled client is gone from the
	// server, or past the bound.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	published := make([]int, len(rates))
	for i, r := range rates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, _ := json.Marshal(strings.Repeat("x", r.dataSize-2))
			every(time.Second/time.Duration(r.perSec), stop, func() bool {
				if _, err := s.Node().Publish(context.Background(), r.channel, data, ""); err != nil {
					t.Error(err)
					return false
				}
				published[i]++
				return true
			})
		}()
	}
	gone := map[string]time.Duration{}
	for time.Since(start) < bound && len(gone) < len(stalled) {
		time.Sleep(100 * time.Millisecond)
		open := serverSockets(t, serverPort)
		for _, c := range stalled {
			if _, ok := gone[c.name]; !ok && open[c.key] == "" {
				gone[c.name] = time.Since(start)
			}
		}
	}
	close(stop)
	wg.Wait()
	open := serverSockets(t, serverPort)
	for _, c := range stalled {
		if st, ok := open[c.key]; ok {
			t.Errorf("%s: still on the server after %v, in state %s", c.name, time.Since(start).Round(time.Millisecond), st)
		} else {
			t.Logf("%s: gone from the server after %v", c.name, gone[c.name].Round(100*time.Millisecond))
		}
	}

	// Every message reached the healthy readers, in order.
	for i, r := range rates {
		expectOffsets(t, healthy[i], r.channel, published[i])
	}
	// The stalled sessions are gone (SockJS ends a session whose client
	// stays away for its disconnect delay, 5 s), and so is their memory.
	wiretest.Eventually(t, "stalled sessions to end", func() bool { return s.Node().SessionCount() == len(rates) })
	if after := heapInUse(); after > heapBefore+4<<20 {
		t.Errorf("heap in use %d KB after the stalled clients left, %d KB before", after>>10, heapBefore>>10)
	}
	for _, c := range stalled {
		c.conn.Close()
	}
	for _, h := range healthy {
		h.Close()
	}
}

// dialStalled is wiretest.DialStalled for the test's length.
func dialStalled(t *testing.T, addr, method, path string) net.Conn {
	t.Helper()
	c, err := wiretest.DialStalled(addr, method, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// every calls f every d until stop is closed or f returns false.
func every(d time.Duration, stop <-chan struct{}, f func() bool) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if !f() {
				return
			}
		}
	}
}

func firstPollCursor(t *testing.T, base, ch string) string {
	t.Helper()
	a := wiretest.PollOnce(context.Background(), t, nil, base+"/connect/poll", wiretest.Query("channel", ch))
	if *a.Cursor == "" {
		t.Fatalf("first poll of %s: an empty cursor", ch)
	}
	return *a.Cursor
}

// sockjsSubscribe subscribes the SockJS session at url (once its receiving
// request has opened it) to ch.
func sockjsSubscribe(t *testing.T, url, ch string) {
	t.Helper()
	body, _ := json.Marshal([]string{string(wire.Subscribe(1, ch, nil))})
	wiretest.Eventually(t, "xhr_send to "+url+" to be taken", func() bool {
		r := wiretest.Request(t, nil, http.MethodPost, url+"/xhr_send", string(body), http.Header{"Content-Type": {"text/plain"}})
		return r.Status == http.StatusNoContent
	})
}

// serverSockets returns the TCP sockets on the server's port, by their
// peer's address (netconn.SocketKey), in every state, FIN-WAIT and
// TIME-WAIT included.
func serverSockets(t *testing.T, port int) map[string]string {
	t.Helper()
	open, err := netconn.Sockets(port)
	if err != nil {
		t.Fatal(err)
	}
	return open
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// expectOffsets reads st, a healthy reader of ch, until n messages have
// come: offsets 1..n, each once and in order, and none beyond n among the
// frames already read.
func expectOffsets(t *testing.T, st *wiretest.Stream, ch string, n int) {
	t.Helper()
	for got := 0; got < n; {
		f, err := st.Next(wiretest.WaitLimit)
		if err != nil {
			t.Fatalf("%s: healthy reader got %d messages, want %d: %v", ch, got, n, err)
		}
		if f.Type != "message" {
			continue
		}
		if f.Offset != uint64(got+1) {
			t.Fatalf("%s: healthy reader got offset %d at position %d", ch, f.Offset, got)
		}
		got++
	}
	for f, err := st.Next(0); err == nil; f, err = st.Next(0) {
		if f.Type == "message" {
			t.Fatalf("%s: healthy reader got offset %d beyond the %d published", ch, f.Offset, n)
		}
	}
}

// A WebSocket client that stops reading keeps the WebSocket rule: no pong
// within the pong wait (two pings plus min(ping, 5 s): 3 s here), and the
// session ends with 3005, whatever the stall timeout (taken off WebSocket
// connections). The connection is then aborted, not closed behind the data
// the client never took: no socket of it stays on the server.
func TestStalledWebSocketEndsWith3005AndIsAborted(t *testing.T) {
	cfg := quietConfig()
	cfg.Ping = time.Second
	cfg.StallTimeout = time.Second // shorter than the pong wait: it must not be what ends the session
	cfg.Namespaces = []session.Namespace{{HistorySize: 10, HistoryTTL: time.Minute, Anonymous: true}}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := startServer(t, s)
	_, serverPort := hostPort(t, base)

	// Read the hello, subscribe, then read nothing more.
	d := &websocket.Dialer{HandshakeTimeout: wiretest.WaitLimit, NetDialContext: wiretest.SmallReceiveBuffer(4096).DialContext}
	conn, _, err := wiretest.DialWS(wsURL(base, "/connect/ws"), nil, d)
	if err != nil {
		t.Fatal(err)
	}
	c := wiretest.NewWSClient(t, conn)
	if f := c.Next(); f.Type != "hello" {
		t.Fatalf("first frame %+v, want hello", f)
	}
	c.Send(string(wire.Subscribe(1, "high", nil)))
	key := netconn.SocketKey(conn.LocalAddr())
	wiretest.Eventually(t, "the WebSocket session", func() bool { return s.Node().SessionCount() == 1 })
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// The low rate: the socket never fills within the pong wait, so
		// the closing frames go into it and wait behind what the client
		// does not read.
		data, _ := json.Marshal(strings.Repeat("x", 198))
		every(100*time.Millisecond, stop, func() bool {
			_, _ = s.Node().Publish(context.Background(), "high", data, "")
			return true
		})
	}()
	// The pong wait (3 s), then the close grace (1 s) for the client's
	// close frame, with slack.
	deadline := start.Add(10 * time.Second)
	for serverSockets(t, serverPort)[key] != "" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if st := serverSockets(t, serverPort)[key]; st != "" {
		t.Fatalf("the stalled WebSocket is still on the server after %v, in state %s", time.Since(start).Round(time.Millisecond), st)
	}
	t.Logf("gone from the server after %v", time.Since(start).Round(100*time.Millisecond))
	if got := closedWith(t, base, "ws", session.DisconnectStale.Code); got != 1 {
		t.Fatalf("%v WebSocket sessions closed with 3005, want 1", got)
	}
}

// closedWith reads waterspout_sessions_closed_total for transport and code
// from /metrics.
func closedWith(t *testing.T, base, transport string, code int) float64 {
	t.Helper()
	n, _ := metricValue(t, base, fmt.Sprintf(`waterspout_sessions_closed_total{code="%d",transport="%s"}`, code, transport))
	return n
}

// hostPort splits a base URL http://host:port into host:port and the port.
func hostPort(t *testing.T, base string) (string, int) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return addr, n
}
