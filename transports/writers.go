package transports

import (
	"runtime"
	"sync"
)

// writers are the shared writers of the pumps whose sinks are TrySinks.
// A publication to a channel with thousands of subscribers wakes thousands
// of pumps at once; each would otherwise start a goroutine, grow its stack
// through the write path, and write once. The shared writers instead take
// the woken pumps from one queue and write each without blocking, so a
// burst costs a few goroutines and one non-blocking write per connection.
// A writer exits when the queue is empty; no goroutine stays behind.
var writers = writerPool{max: runtime.GOMAXPROCS(0)}

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
