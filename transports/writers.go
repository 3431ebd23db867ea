package transports

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/waterspout/waterspout/internal/netconn"
)

// Writers is one server's streaming engine state: the shared writers of its
// pumps and the origin of its heartbeat grid. The server creates one and
// hands it to every transport through Config.Writers, so two servers in one
// process share neither, and a test can make its own inside a
// testing/synctest bubble (the grid's origin is then the bubble's clock).
//
// The shared writers serve the pumps whose sinks are TrySinks.
// A publication to a channel with thousands of subscribers wakes thousands
// of pumps at once; each would otherwise start a goroutine, grow its stack
// through the write path, and write once. The shared writers instead take
// the woken pumps from one queue and write each without blocking, so a
// burst costs a few goroutines and one non-blocking write per connection.
// A writer exits when the queue is empty; no goroutine stays behind.
type Writers struct {
	pool writerPool
	// origin is where the heartbeat grid starts (heartbeatDelay).
	origin time.Time
	log    *slog.Logger
	// slow is logged once: the first hijacked connection that cannot take
	// the non-blocking fast path on a system that has it.
	slow sync.Once
}

// NewWriters returns a server's Writers: at most one shared writer per
// processor, a heartbeat grid from now, and log for what goes wrong.
func NewWriters(log *slog.Logger) *Writers {
	if log == nil {
		log = slog.Default()
	}
	return &Writers{pool: writerPool{max: runtime.GOMAXPROCS(0)}, origin: time.Now(), log: log}
}

// Conn wraps a connection hijacked from net/http for a pump
// (netconn.NewConn). A connection that does not take the fast path where
// the system has one (a wrapper on the way from the listener that hides
// the socket, TLS) still works, with every delivery flushed on a goroutine
// of its own; the first one is logged, once, so that this is not silent.
func (w *Writers) Conn(c net.Conn) *netconn.Conn {
	tc := netconn.NewConn(c)
	if netconn.FastPath && !tc.Direct() {
		w.slow.Do(func() {
			w.log.Warn("a streaming connection cannot be written without blocking; deliveries take the slower path",
				"conn", fmt.Sprintf("%T", c))
		})
	}
	return tc
}

type writerPool struct {
	max int // writers at most: one per processor

	mu     sync.Mutex
	queue  []*Pump
	head   int // queue[head:] waits
	active int // writers running
}

// submit queues p and starts a writer if fewer than max run. It never
// blocks: it is called with a session's lock held, from the fan-out.
func (wp *writerPool) submit(p *Pump) {
	wp.mu.Lock()
	wp.queue = append(wp.queue, p)
	start := wp.active < wp.max
	if start {
		wp.active++
	}
	wp.mu.Unlock()
	if start {
		go wp.work()
	}
}

// requeue puts p, which a writer is serving, at the back of the queue; the
// writer goes on with the next one.
func (wp *writerPool) requeue(p *Pump) {
	wp.mu.Lock()
	wp.queue = append(wp.queue, p)
	wp.mu.Unlock()
}

// work gives every queued pump its turn until the queue is empty.
func (wp *writerPool) work() {
	for {
		wp.mu.Lock()
		if wp.head == len(wp.queue) {
			wp.active--
			if cap(wp.queue) > 1<<16 { // do not keep a huge burst's array
				wp.queue = nil
			} else {
				wp.queue = wp.queue[:0]
			}
			wp.head = 0
			wp.mu.Unlock()
			return
		}
		p := wp.queue[wp.head]
		wp.queue[wp.head] = nil
		wp.head++
		if wp.head > 1024 && 2*wp.head > len(wp.queue) {
			// A queue that never empties must not grow: move what waits
			// to the front.
			n := copy(wp.queue, wp.queue[wp.head:])
			clear(wp.queue[n:])
			wp.queue, wp.head = wp.queue[:n], 0
		}
		wp.mu.Unlock()
		p.shared()
	}
}
