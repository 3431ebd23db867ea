package sockjs

import (
	"sync"

	"github.com/waterspout/waterspout/session"
)

// link is what the HTTP side of a SockJS session shares with its bridge: how
// many frames have been written to its receiving requests, and a way to fail
// the session from a request (an oversized xhr_send or WebSocket message).
//
// sockjs-go buffers whatever Session.Send is given while no receiver can
// take it (between two polls, between two streaming requests), without
// bound. After a Send that wrote nothing the bridge therefore waits until
// sockjs-go has written that buffer to the next receiver before it takes
// more from the session's bounded queue: a client that stops polling
// overflows that queue (3002) instead of the heap.
type link struct {
	refs int // guarded by links.mu
	// websocket links have one receiver for the whole session, written to
	// directly: there Send never buffers.
	websocket bool

	mu     sync.Mutex
	writes uint64        // frames written to receiving requests
	wrote  chan struct{} // closed (and replaced) at every such write
	sess   *session.Session
	failed *session.Disconnect // a failure that came before the session was bound
}

func newLink() *link { return &link{wrote: make(chan struct{})} }

// written records a frame written to a receiving request.
func (l *link) written() {
	l.mu.Lock()
	l.writes++
	close(l.wrote)
	l.wrote = make(chan struct{})
	l.mu.Unlock()
}

// writeCount returns the frames written so far and a channel closed at the
// next write.
func (l *link) writeCount() (uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes, l.wrote
}

// bind makes s the session that fail ends.
func (l *link) bind(s *session.Session) {
	l.mu.Lock()
	l.sess = s
	if l.failed != nil {
		s.Fail(*l.failed)
		l.failed = nil
	}
	l.mu.Unlock()
}

func (l *link) unbind(s *session.Session) {
	l.mu.Lock()
	if l.sess == s {
		l.sess = nil
	}
	l.mu.Unlock()
}

// fail ends the bound session with d, or the next one bound.
func (l *link) fail(d session.Disconnect) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess != nil {
		l.sess.Fail(d)
		return
	}
	l.failed = &d
}

// links holds the links of the HTTP-transport sessions by SockJS session id,
// as sockjs-go holds its sessions. A link lives while a request or a bridge
// holds it.
type links struct {
	mu sync.Mutex
	m  map[string]*link
}

func (ls *links) acquire(id string) *link {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[id]
	if l == nil {
		l = newLink()
		ls.m[id] = l
	}
	l.refs++
	return l
}

func (ls *links) release(id string, l *link) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l.refs--
	if l.refs == 0 && ls.m[id] == l {
		delete(ls.m, id)
	}
}

func (ls *links) lookup(id string) *link {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.m[id]
}

// linkKey carries a WebSocket request's link to its bridge, through the
// request sockjs-go hands the session.
type linkKey struct{}
