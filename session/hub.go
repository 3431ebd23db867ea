package session

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// hub maps channels to this node's sessions. It is split into shards, each
// with its own lock, so publishing to one channel does not contend with
// subscribing to another.
type hub struct {
	seed   maphash.Seed
	broker Broker
	shards [hubShards]hubShard
}

const hubShards = 64

// brokerSubscribeTimeout bounds a broker subscription made for a channel's
// first local session.
const brokerSubscribeTimeout = 10 * time.Second

type hubShard struct {
	mu    sync.RWMutex
	chans map[string]*hubChannel
	// brokerMu serialises broker Subscribe/Unsubscribe for this shard's
	// channels, so an unsubscribe for the last session and a subscribe for a
	// new one cannot reach the broker in the wrong order.
	brokerMu sync.Mutex
	// recent keeps hubChannel.last of channels whose last local session
	// left, so a channel whose subscribers all come and go at once (every
	// long-poll after an answer) is still known as busy. A hint: cleared
	// when it holds maxRecent entries.
	recent map[string]int64
}

const maxRecent = 1024

type hubChannel struct {
	// subs holds each local session's subscription, so that a delivery
	// goes straight to it rather than through the session's channel map.
	subs  map[*Session]*subscription
	ready chan struct{} // closed once the broker subscription is in place
	err   error         // set before ready is closed
	last  atomic.Int64  // Unix nanoseconds of the last publication handed out
}

func newHub(b Broker) *hub {
	h := &hub{seed: maphash.MakeSeed(), broker: b}
	for i := range h.shards {
		h.shards[i].chans = make(map[string]*hubChannel)
		h.shards[i].recent = make(map[string]int64)
	}
	return h
}

func (h *hub) shard(ch string) *hubShard {
	return &h.shards[maphash.String(h.seed, ch)%hubShards]
}

// add registers s's subscription sub to ch and returns once the node
// receives ch from the broker. No lock may be held on entry: it takes
// ch's shard lock, then brokerMu for the broker's Subscribe.
func (h *hub) add(ctx context.Context, ch string, s *Session, sub *subscription) error {
	sh := h.shard(ch)
	sh.mu.Lock()
	c := sh.chans[ch]
	first := c == nil
	if first {
		c = &hubChannel{subs: make(map[*Session]*subscription), ready: make(chan struct{})}
		if ns, ok := sh.recent[ch]; ok {
			c.last.Store(ns)
			delete(sh.recent, ch)
		}
		sh.chans[ch] = c
	}
	c.subs[s] = sub
	sh.mu.Unlock()

	if first {
		// The broker subscription serves every session that joins meanwhile,
		// so it must not end because this one's client left: it runs on a
		// context of its own, bounded in time.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), brokerSubscribeTimeout)
		sh.brokerMu.Lock()
		err := h.broker.Subscribe(bctx, ch)
		sh.brokerMu.Unlock()
		cancel()
		if err != nil {
			sh.mu.Lock()
			if sh.chans[ch] == c {
				delete(sh.chans, ch)
			}
			sh.mu.Unlock()
		}
		c.err = err
		close(c.ready)
		return err
	}
	select {
	case <-c.ready:
		if c.err != nil {
			return c.err
		}
		return nil
	case <-ctx.Done():
		h.remove(ch, s, sub)
		return ctx.Err()
	}
}

// remove unregisters s's subscription sub from ch, unless s has
// subscribed again since; the last one out unsubscribes the node. No lock
// may be held on entry (see add).
func (h *hub) remove(ch string, s *Session, sub *subscription) {
	sh := h.shard(ch)
	sh.mu.Lock()
	c := sh.chans[ch]
	if c == nil {
		sh.mu.Unlock()
		return
	}
	if c.subs[s] != sub {
		sh.mu.Unlock()
		return
	}
	delete(c.subs, s)
	empty := len(c.subs) == 0
	if empty {
		delete(sh.chans, ch)
		if ns := c.last.Load(); ns != 0 {
			if len(sh.recent) >= maxRecent {
				clear(sh.recent)
			}
			sh.recent[ch] = ns
		}
	}
	sh.mu.Unlock()
	if !empty {
		return
	}
	<-c.ready // never unsubscribe before the subscribe finished
	if c.err != nil {
		return
	}
	sh.brokerMu.Lock()
	defer sh.brokerMu.Unlock()
	sh.mu.RLock()
	again := sh.chans[ch] != nil
	sh.mu.RUnlock()
	if !again {
		// Best effort: a failed unsubscribe only costs unused deliveries.
		_ = h.broker.Unsubscribe(context.Background(), ch)
	}
}

// broadcast hands p to every local session on its channel. The frame is
// encoded once, and only if someone is listening. It runs under the
// broker's delivery lock and takes the shard read lock, then each
// session's lock (Session.deliver); neither may be held on entry.
func (h *hub) broadcast(p *Publication) int {
	sh := h.shard(p.Channel)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	c := sh.chans[p.Channel]
	if c == nil || len(c.subs) == 0 {
		return 0
	}
	p.Frame()
	c.last.Store(time.Now().UnixNano())
	for s, sub := range c.subs {
		s.deliver(sub, p)
	}
	return len(c.subs)
}

// lastPublished returns when this node last handed out a publication of
// ch to local sessions, as far as it remembers; zero when it does not.
func (h *hub) lastPublished(ch string) time.Time {
	sh := h.shard(ch)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	ns := sh.recent[ch]
	if c := sh.chans[ch]; c != nil {
		ns = c.last.Load()
	}
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// gap makes every local session on ch resume from history. Like
// broadcast, it takes the shard read lock, then each session's lock.
func (h *hub) gap(ch string) {
	sh := h.shard(ch)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if c := sh.chans[ch]; c != nil {
		for s := range c.subs {
			s.fail(DisconnectInsufficientState)
		}
	}
}

// count returns the number of channels with local subscribers.
func (h *hub) count() int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		n += len(sh.chans)
		sh.mu.RUnlock()
	}
	return n
}
