package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/waterspout/waterspout/internal/netconn"
)

// The floor scenario (S0) measures what this machine costs to deliver S2's
// traffic when no push server runs at all: the same number of loopback TCP
// connections, the same frame size and the same open-loop schedule, but
// the "server" is one thread per CPU making one non-blocking write(2) per
// connection per publication and the "client" one thread per CPU in an
// epoll_wait/read(2) loop. No framing, no sessions, no Go scheduler on the
// hot path, no HTTP. Whatever S2 costs beyond these numbers is the server's
// and the load generator's own work; a bar below them cannot be met by any
// server on this machine.

// floorFrame is a WebSocket text frame the size of one S2 delivery from
// WaterSpout: a four-byte header (FIN + text, 16-bit length) and a message
// frame around the payload, about 180 bytes in all.
func floorFrame(buf []byte, seq, t int64) []byte {
	body := append(buf[4:4], `{"type":"message","channel":"bench-00000000.0","offset":`...)
	body = strconv.AppendInt(body, seq, 10)
	body = append(body, `,"epoch":"sJHoRRvK","data":`...)
	body = appendPayload(body, seq, t)
	body = append(body, `,"time":1764806400000}`...)
	buf = buf[:4+len(body)]
	buf[0], buf[1], buf[2], buf[3] = 0x81, 126, byte(len(body)>>8), byte(len(body))
	return buf
}

// floorFrameLen returns the length of the frame at the start of data, or 0
// when its header is not all there yet.
func floorFrameLen(data []byte) int {
	switch {
	case len(data) < 2:
		return 0
	case data[1]&0x7f < 126:
		return 2 + int(data[1]&0x7f)
	case len(data) < 4:
		return 0
	default:
		return 4 + (int(data[2])<<8 | int(data[3]))
	}
}

// floorPair is one connection: the writer's end and the reader's end.
type floorPair struct {
	w, r int
	last int64  // the reader's last sequence number
	part []byte // the reader's unfinished frame, if a read split one
}

// threadCPU returns one thread of this process's run time from its
// schedstat (to the nanosecond) and its system time from its stat (in
// clock ticks); 0 for what cannot be read.
func threadCPU(tid int) (total, sys time.Duration) {
	dir := "/proc/self/task/" + strconv.Itoa(tid)
	total, _ = threadRunTime(dir)
	if b, err := os.ReadFile(dir + "/stat"); err == nil {
		if st, err := parseStat(b); err == nil {
			sys = time.Duration(st.stime) * clockTick
		}
	}
	return total, sys
}

// floor runs S0 once with S2's sizes and rates.
func floor(ctx context.Context, cfg *Config, sz sizes) Result {
	n := sz.fanoutSubs
	res := Result{Scenario: ScenarioFloor, Target: KindFloor, Transport: "tcp", Conns: n, Channels: 1}
	rec := newRecorder()
	progress := func(format string, args ...any) { progressf(cfg.Progress, KindFloor, format, args...) }
	progress("floor: opening %d loopback connections", n)
	pairs, err := openFloorPairs(n)
	defer closeFloorPairs(pairs)
	if err != nil {
		rec.errs.add(err)
		return finish(res, rec)
	}
	var delivered, gaps, dups atomic.Int64
	readers := make([]int, floorThreads()) // the reader threads' ids, for their CPU time
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	for i := range readers {
		share := pairs[i*len(pairs)/len(readers) : (i+1)*len(pairs)/len(readers)]
		ep, err := floorEpoll(share)
		if err != nil {
			rec.errs.add(err)
			return finish(res, rec)
		}
		started := make(chan struct{})
		wg.Go(func() {
			defer syscall.Close(ep)
			runtime.LockOSThread() // the thread ends with the goroutine
			readers[i] = syscall.Gettid()
			close(started) // readers[i] is read after this
			floorRead(ep, share, rec, stop, &delivered, &gaps, &dups)
		})
		<-started
	}
	readerCPU := func() (sum time.Duration) {
		for _, tid := range readers {
			run, _ := threadCPU(tid)
			sum += run
		}
		return sum
	}

	var seq int64 // publications so far, over every step
	for _, rate := range sz.rates {
		pubRate := float64(rate) / float64(n)
		count := max(int64(math.Round(pubRate*sz.step.Seconds())), 1)
		hist := &histogram{}
		rec.hist.Store(hist)
		d0, g0, u0 := delivered.Load(), gaps.Load(), dups.Load()
		r0 := readerCPU()
		t0 := time.Now()
		w, ws, shortWrites := floorWrite(ctx, pairs, rec, seq, count, pubRate)
		seq += count
		publishing := max(time.Since(t0), time.Duration(float64(count)/pubRate*float64(time.Second)))
		want := d0 + count*int64(n)
		for deadline := time.Now().Add(sz.drain); delivered.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil; {
			time.Sleep(time.Millisecond)
		}
		r1 := readerCPU()
		elapsed := time.Since(t0)
		st := Step{TargetRate: rate, Publications: count, Expected: count * int64(n), PublishErrors: shortWrites,
			Delivered: delivered.Load() - d0, Gaps: gaps.Load() - g0, Dups: dups.Load() - u0, Seconds: publishing.Seconds()}
		st.DeliveriesPerSec = float64(st.Delivered) / publishing.Seconds()
		st.setLatency(hist)
		st.ServerCPUSeconds = w.Seconds()
		st.ServerCPUPct = 100 * w.Seconds() / elapsed.Seconds()
		st.ClientCPUPct = 100 * (r1 - r0).Seconds() / elapsed.Seconds()
		if st.Delivered > 0 && w > 0 {
			st.CPUMicrosPerDelivery = float64(w.Microseconds()) / float64(st.Delivered)
			st.SysMicrosPerDelivery = float64(ws.Microseconds()) / float64(st.Delivered)
			st.DeliveriesPerCPUSec = float64(st.Delivered) / w.Seconds()
			st.ClientMicrosPerDelivery = float64((r1 - r0).Microseconds()) / float64(st.Delivered)
		}
		res.Steps = append(res.Steps, st)
		progress("floor: %d/s target: %.0f deliveries/s, %d/%d delivered, p99 %.1f ms, %.2f µs writer + %.2f µs reader CPU/delivery",
			rate, st.DeliveriesPerSec, st.Delivered, st.Expected, st.P99, st.CPUMicrosPerDelivery, st.ClientMicrosPerDelivery)
		if ctx.Err() != nil {
			break
		}
	}
	return finish(res, rec)
}

// floorWrite writes publications base+1 … base+count to every connection
// on an open-loop schedule at pubRate per second, from one locked thread
// per CPU, each with its share of the connections, as a server would use
// every core. It returns the threads' CPU time (and its system part) and
// the number of writes the kernel did not take whole.
func floorWrite(ctx context.Context, pairs []*floorPair, rec *recorder, base, count int64, pubRate float64) (cpu, sys time.Duration, short int64) {
	writers := floorThreads()
	start := rec.now()
	interval := float64(time.Second) / pubRate
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		share := pairs[w*len(pairs)/writers : (w+1)*len(pairs)/writers]
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tid := syscall.Gettid()
			c0, s0 := threadCPU(tid)
			var n int64
			defer func() {
				c1, s1 := threadCPU(tid)
				mu.Lock()
				cpu, sys, short = cpu+c1-c0, sys+s1-s0, short+n
				mu.Unlock()
			}()
			buf := make([]byte, 256)
			for j := range count {
				intended := start + int64(float64(j)*interval)
				if wait := time.Duration(intended - rec.now()); wait > 0 {
					select {
					case <-time.After(wait):
					case <-ctx.Done():
						return
					}
				}
				frame := floorFrame(buf, base+j+1, intended)
				for _, pr := range share {
					m, err := netconn.RawWrite(pr.w, frame)
					if err != nil || m != len(frame) {
						n++ // a full socket buffer: the reader is far behind
					}
				}
			}
		})
	}
	wg.Wait()
	return cpu, sys, short
}

// floorThreads is how many writer threads, and how many reader threads,
// the floor uses: one per CPU, as a server and a load generator would.
// (One reader thread instead of two: p99 at 50,000/s 65.5–67.6 ms against
// 52.7–57.3 in three alternating pairs, and the reader alone was the
// bottleneck.)
func floorThreads() int { return runtime.NumCPU() }

// floorEpoll returns an epoll instance watching the reader ends of pairs,
// each event naming its pair's index.
func floorEpoll(pairs []*floorPair) (int, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("floor: epoll: %w", err)
	}
	for i, p := range pairs {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(i)}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, p.r, &ev); err != nil {
			syscall.Close(ep)
			return -1, fmt.Errorf("floor: epoll_ctl: %w", err)
		}
	}
	return ep, nil
}

// floorRead reads every connection until stop is closed, checks each
// connection's sequence and records each frame's latency.
func floorRead(ep int, pairs []*floorPair, rec *recorder, stop <-chan struct{}, delivered, gaps, dups *atomic.Int64) {
	evs := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-stop:
			return
		default:
		}
		k, err := syscall.EpollWait(ep, evs, 100)
		if err != nil {
			continue // EINTR: the runtime's preemption signal
		}
		for _, ev := range evs[:k] {
			p := pairs[ev.Fd]
			m, err := netconn.RawRead(p.r, buf)
			if err != nil || m <= 0 {
				continue
			}
			p.consume(buf[:m], func(seq, t int64) {
				switch {
				case seq <= p.last:
					dups.Add(1)
				default: // delivered last: the scenario waits on it, then reads the rest
					gaps.Add(seq - p.last - 1)
					p.last = seq
					rec.hist.Load().Record(time.Duration(rec.now() - t))
					delivered.Add(1)
				}
			})
		}
	}
}

// consume takes the bytes of one read: it calls got with the payload of
// every frame completed by them, and keeps a frame they end inside of for
// the next read.
func (p *floorPair) consume(data []byte, got func(seq, t int64)) {
	if len(p.part) > 0 {
		data = append(p.part, data...)
		p.part = p.part[:0]
	}
	for {
		end := floorFrameLen(data)
		if end == 0 || len(data) < end {
			break
		}
		if seq, t, ok := scanPayload(data[:end]); ok {
			got(seq, t)
		}
		data = data[end:]
	}
	if len(data) > 0 {
		p.part = append(p.part[:0], data...)
	}
}

// openFloorPairs opens n loopback TCP connections to a listener of its own,
// both ends non-blocking with Nagle off, as a push server's would be.
func openFloorPairs(n int) ([]*floorPair, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && uint64(2*n+64) > rl.Cur {
		return nil, fmt.Errorf("floor: %d connections need %d file descriptors; the limit is %d", n, 2*n+64, rl.Cur)
	}
	ln, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("floor: socket: %w", err)
	}
	defer syscall.Close(ln)
	loopback := &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.Bind(ln, loopback); err != nil {
		return nil, fmt.Errorf("floor: bind: %w", err)
	}
	if err := syscall.Listen(ln, 1024); err != nil {
		return nil, fmt.Errorf("floor: listen: %w", err)
	}
	sa, err := syscall.Getsockname(ln)
	if err != nil {
		return nil, fmt.Errorf("floor: getsockname: %w", err)
	}
	pairs := make([]*floorPair, 0, n)
	for range n {
		r, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return pairs, fmt.Errorf("floor: socket: %w", err)
		}
		if err := syscall.Connect(r, sa); err != nil {
			syscall.Close(r)
			return pairs, fmt.Errorf("floor: connect: %w", err)
		}
		w, _, err := syscall.Accept4(ln, syscall.SOCK_CLOEXEC)
		if err != nil {
			syscall.Close(r)
			return pairs, fmt.Errorf("floor: accept: %w", err)
		}
		pairs = append(pairs, &floorPair{w: w, r: r})
		for _, fd := range []int{w, r} {
			if err := errors.Join(syscall.SetNonblock(fd, true),
				syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)); err != nil {
				return pairs, fmt.Errorf("floor: socket options: %w", err)
			}
		}
	}
	return pairs, nil
}

func closeFloorPairs(pairs []*floorPair) {
	for _, p := range pairs {
		syscall.Close(p.w)
		syscall.Close(p.r)
	}
}
