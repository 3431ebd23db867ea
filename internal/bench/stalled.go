package bench

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/waterspout/waterspout/internal/netconn"
)

// healthyReaders is how many subscribers keep reading beside S10's stalled
// ones, to show their deliveries are whole.
const healthyReaders = 10

// stalledRate and stalledPad are S10's publication rate (per second) and
// payload padding: a notification stream, slow enough that a stalled
// reader's kernel buffers take a long time to fill.
const (
	stalledRate = 10
	stalledPad  = 200
)

// stalled is S10: SSE subscribers of one channel that never read past the
// response head (4 KB receive buffers, so their windows close after a few
// kilobytes), from several source addresses, while a publisher goes on at
// a notification rate, and a few healthy readers beside them. It samples
// the server's RSS and the host's TCP memory (/proc/net/sockstat) while
// the stalled readers' data piles up, and records when the server drops
// each one; then it closes every client and samples again.
func (r *runner) stalled(ctx context.Context) Result {
	n := r.sz.stalledSubs
	res := Result{Scenario: ScenarioStalled, Target: r.t.Kind, Transport: TransportSSE, Conns: n, Channels: 1}
	rec := newRecorder()
	channels := r.channelNames(1)
	all := r.clients(TransportSSE, rec, channels, n+healthyReaders)
	for _, c := range all[:n] {
		c.rcvBuf, c.expectEnd = slowRcvBuf, true
		c.stalled.Store(true) // run waits before its first read
	}
	sr := &StalledResult{Stalled: n, Rate: stalledRate}
	res.Stalled = sr
	sr.RSSBeforeKB, sr.TCPMemBeforeKB = r.sample().RSSKB, tcpMemKB()
	sr.HeapBeforeKB, _ = r.serverMetrics()
	r.progress("stalled: connecting %d SSE subscribers that never read, and %d that do", n, healthyReaders)
	clients := r.connectAll(ctx, rec, all)
	defer func() { stopAll(clients) }()
	var stalled, healthy []*client
	for _, c := range clients {
		if c.expectEnd {
			stalled = append(stalled, c)
		} else {
			healthy = append(healthy, c)
		}
	}
	sr.Stalled = len(stalled)
	sr.RSSIdleKB, sr.TCPMemIdleKB = r.sample().RSSKB, tcpMemKB()
	sr.HeapIdleKB, sr.SessionsIdle = r.serverMetrics()

	p := newPublisher(r.t, rec, channels, 1)
	defer p.client.CloseIdleConnections()
	p.pad = stalledPad
	sr.PayloadB = len(p.payload(nil, 1, 1))
	// Sample while publishing; note when the server drops each stalled
	// reader: its side of the connection is gone from /proc/net/tcp (the
	// reader itself, reading nothing, would not notice).
	keys := make([]string, len(stalled))
	for i, c := range stalled {
		c.connMu.Lock()
		if c.conn != nil {
			keys[i] = netconn.SocketKey(c.conn.LocalAddr())
		}
		c.connMu.Unlock()
	}
	port := r.t.port()
	sr.ServerSocketsIdle = len(serverSockets(port))
	start := time.Now()
	dropped := make([]time.Duration, len(stalled))
	sr.RSSPeakKB, sr.TCPMemPeakKB = sr.RSSIdleKB, sr.TCPMemIdleKB
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for watchCtx.Err() == nil {
			rss, mem, open := r.sample().RSSKB, tcpMemKB(), serverSockets(port)
			heap, _ := r.serverMetrics()
			sr.RSSPeakKB, sr.TCPMemPeakKB, sr.HeapPeakKB = max(sr.RSSPeakKB, rss), max(sr.TCPMemPeakKB, mem), max(sr.HeapPeakKB, heap)
			for i, k := range keys {
				if dropped[i] == 0 && k != "" && open != nil && open[k] == "" {
					dropped[i] = time.Since(start)
				}
			}
			sleep(watchCtx, 500*time.Millisecond)
		}
	}()
	sr.Readers = r.step(ctx, p, healthy, stalledRate*len(clients), r.sz.stalledStep, len(clients))
	stopWatch()
	<-watchDone
	sr.Seconds = time.Since(start).Seconds()
	sr.RSSEndKB, sr.TCPMemEndKB, sr.ServerSocketsEnd = r.sample().RSSKB, tcpMemKB(), len(serverSockets(port))
	sr.HeapEndKB, sr.SessionsEnd = r.serverMetrics()
	sr.RSSPeakKB, sr.TCPMemPeakKB = max(sr.RSSPeakKB, sr.RSSEndKB), max(sr.TCPMemPeakKB, sr.TCPMemEndKB)
	sr.HeapPeakKB = max(sr.HeapPeakKB, sr.HeapEndKB)
	var times []float64
	for _, d := range dropped {
		if d > 0 {
			sr.Dropped++
			times = append(times, d.Seconds())
		}
	}
	if len(times) > 0 {
		slices.Sort(times)
		sr.DropP50s, sr.DropMaxs = times[len(times)/2], times[len(times)-1]
	}
	stopAll(clients)
	clients = nil
	time.Sleep(2 * time.Second)
	sr.RSSAfterKB, sr.TCPMemAfterKB = r.sample().RSSKB, tcpMemKB()
	sr.HeapAfterKB, _ = r.serverMetrics()
	r.progress("stalled: %d of %d dropped (median %.1f s, last %.1f s); RSS %d → peak %d MB, TCP memory %d → peak %d MB",
		sr.Dropped, sr.Stalled, sr.DropP50s, sr.DropMaxs, sr.RSSIdleKB>>10, sr.RSSPeakKB>>10, sr.TCPMemIdleKB>>10, sr.TCPMemPeakKB>>10)
	return finish(res, rec)
}

// serverMetrics reads two of the server's own figures from /metrics: its Go
// heap in use (go_memstats_heap_inuse_bytes, in KB: unlike RSS it falls
// when memory is freed, at the next collection) and its open sessions
// (opened minus closed). Zeros when the target has no such metrics.
func (r *runner) serverMetrics() (heapKB, sessions int64) {
	if r.t.Kind != KindWaterSpout {
		return 0, 0
	}
	resp, err := http.Get(r.t.URL + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var opened, closed float64
	for sc.Scan() {
		line := sc.Text()
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '}'); i >= 0 {
			name, rest = line[:strings.IndexByte(line, '{')], strings.TrimSpace(line[i+1:])
		}
		v, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			heapKB = int64(v) >> 10
		case "waterspout_sessions_opened_total":
			opened += v
		case "waterspout_sessions_closed_total":
			closed += v
		}
	}
	return heapKB, int64(opened - closed)
}

// tcpMemKB is the kernel's TCP memory, every socket of the host together
// (/proc/net/sockstat, "TCP: … mem", in pages), in KB; 0 where there is
// none to read.
func tcpMemKB() int64 {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			if f[i] == "mem" {
				pages, _ := strconv.ParseInt(f[i+1], 10, 64)
				return pages * int64(os.Getpagesize()) >> 10
			}
		}
	}
	return 0
}

// serverSockets returns the TCP sockets on the server's port, by their
// peer's address (netconn.SocketKey); nil where /proc/net/tcp cannot be
// read.
func serverSockets(port int) map[string]string {
	open, _ := netconn.Sockets(port)
	return open
}
