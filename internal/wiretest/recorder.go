package wiretest

import "sync"

// Recorder is a session.Metrics that remembers how sessions opened and
// closed and how many were dropped as slow.
type Recorder struct {
	mu     sync.Mutex
	opened []string         // transports, in order
	closed map[string][]int // transport → close codes, in order
	slow   int
}

// SessionOpened implements session.Metrics.
func (r *Recorder) SessionOpened(transport string) {
	r.mu.Lock()
	r.opened = append(r.opened, transport)
	r.mu.Unlock()
}

// SessionClosed implements session.Metrics.
func (r *Recorder) SessionClosed(transport string, code int) {
	r.mu.Lock()
	if r.closed == nil {
		r.closed = map[string][]int{}
	}
	r.closed[transport] = append(r.closed[transport], code)
	r.mu.Unlock()
}

// Published implements session.Metrics.
func (r *Recorder) Published(bool) {}

// Delivered implements session.Metrics.
func (r *Recorder) Delivered(string) {}

// SlowClient implements session.Metrics.
func (r *Recorder) SlowClient(string) {
	r.mu.Lock()
	r.slow++
	r.mu.Unlock()
}

// Opened returns the transports of the sessions opened so far.
func (r *Recorder) Opened() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.opened...)
}

// ClosedCodes returns the close codes of transport's sessions, in order.
func (r *Recorder) ClosedCodes(transport string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.closed[transport]...)
}

// ClosedWith counts the sessions, of any transport, closed with one of codes.
func (r *Recorder) ClosedWith(codes ...int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, cs := range r.closed {
		for _, c := range cs {
			for _, want := range codes {
				if c == want {
					n++
				}
			}
		}
	}
	return n
}

// SlowClients counts the sessions dropped as slow.
func (r *Recorder) SlowClients() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.slow
}
