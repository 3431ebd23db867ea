package session

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"hash/maphash"
	"sync"
	"time"
)

// MemoryBroker keeps channel histories in this process. Its epochs are random
// per channel, so a restart (which loses history) is visible to clients as an
// epoch change and they are told recovered: false.
type MemoryBroker struct {
	shards  [memoryShards]memoryShard
	seed    maphash.Seed
	handler BrokerHandler
	now     func() time.Time

	idleTTL time.Duration // see MemoryBrokerConfig.IdleChannelTTL
	stop    chan struct{}
	stopped sync.WaitGroup

	// presence is kept apart from the channels' histories (see
	// broker_memory_presence.go).
	presence memoryPresence
}

const memoryShards = 64

type memoryShard struct {
	mu    sync.Mutex
	chans map[string]*memoryChannel
}

// memoryChannel is one channel's state. Its mutex orders offset assignment,
// the history append and delivery, so subscribers see offset order.
type memoryChannel struct {
	mu         sync.Mutex
	epoch      string
	top        uint64
	hist       []*Publication // ring buffer, oldest at head
	head, n    int
	keys       map[string]*Publication
	keyOrder   []keyEntry    // FIFO of keys by expiry
	ttl        time.Duration // history TTL, from the namespace of the last publish
	subscribed bool
	lastUsed   time.Time
	dead       bool // dropped by the sweep; see lockChannel
}

type keyEntry struct {
	key     string
	expires time.Time
}

// MemoryBrokerConfig configures a MemoryBroker.
type MemoryBrokerConfig struct {
	// IdleChannelTTL bounds how long an idle channel's epoch and offset are
	// remembered after its history is empty. Default 1 hour.
	IdleChannelTTL time.Duration
	// SweepInterval is how often expired history is dropped. Default 10 s.
	SweepInterval time.Duration
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// NewMemoryBroker returns a running MemoryBroker; Close stops its sweeper.
func NewMemoryBroker(cfg MemoryBrokerConfig) *MemoryBroker {
	if cfg.IdleChannelTTL <= 0 {
		cfg.IdleChannelTTL = time.Hour
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &MemoryBroker{seed: maphash.MakeSeed(), now: cfg.Now, idleTTL: cfg.IdleChannelTTL, stop: make(chan struct{})}
	for i := range b.shards {
		b.shards[i].chans = make(map[string]*memoryChannel)
	}
	b.stopped.Add(1)
	go b.sweepLoop(cfg.SweepInterval)
	return b
}

var _ Broker = (*MemoryBroker)(nil)

// Close stops the background sweeper.
func (b *MemoryBroker) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	b.stopped.Wait()
	return nil
}

// SetHandler implements Broker.
func (b *MemoryBroker) SetHandler(h BrokerHandler) { b.handler = h }

// Ready implements Readier: the memory broker is always ready.
func (b *MemoryBroker) Ready(context.Context) error { return nil }

func (b *MemoryBroker) shard(ch string) *memoryShard {
	return &b.shards[maphash.String(b.seed, ch)%memoryShards]
}

// lockChannel returns the channel's state, locked, creating it (with a new
// epoch) if create; nil when it does not exist and create is false.
//
// The shard lock is released before the channel lock is taken (the sweep
// takes them the other way round), so the sweep may drop the channel in
// between: it marks a dropped channel dead, and the lookup starts again
// rather than change state nobody can reach any more.
func (b *MemoryBroker) lockChannel(ch string, create bool) *memoryChannel {
	sh := b.shard(ch)
	for {
		sh.mu.Lock()
		c := sh.chans[ch]
		if c == nil && create {
			c = &memoryChannel{epoch: newEpoch(), lastUsed: b.now()}
			sh.chans[ch] = c
		}
		sh.mu.Unlock()
		if c == nil {
			return nil
		}
		c.mu.Lock()
		if !c.dead {
			return c
		}
		c.mu.Unlock()
	}
}

// Publish implements Broker.
func (b *MemoryBroker) Publish(_ context.Context, ch string, data json.RawMessage, opts PublishOptions) (PublishResult, error) {
	now := b.now()
	c := b.lockChannel(ch, true)
	defer c.mu.Unlock()
	c.lastUsed = now
	c.expire(now)
	if opts.Key != "" {
		if p, ok := c.keys[opts.Key]; ok {
			return PublishResult{Publication: p, Duplicate: true}, nil
		}
	}
	c.top++
	p := &Publication{Channel: ch, Offset: c.top, Epoch: c.epoch, Data: data, Key: opts.Key, Time: now.UnixMilli()}
	c.append(p, opts.HistorySize)
	if opts.Key != "" {
		ttl := max(opts.KeyTTL, opts.HistoryTTL)
		if c.keys == nil {
			c.keys = make(map[string]*Publication)
		}
		c.keys[opts.Key] = p
		c.keyOrder = append(c.keyOrder, keyEntry{opts.Key, now.Add(ttl)})
	}
	c.ttl = opts.HistoryTTL
	if c.subscribed && b.handler != nil {
		b.handler.HandlePublication(p)
	}
	return PublishResult{Publication: p}, nil
}

// Subscribe implements Broker. Delivery is in-process, so it only marks the channel.
func (b *MemoryBroker) Subscribe(_ context.Context, ch string) error {
	c := b.lockChannel(ch, true)
	c.subscribed = true
	c.mu.Unlock()
	return nil
}

// Unsubscribe implements Broker.
func (b *MemoryBroker) Unsubscribe(_ context.Context, ch string) error {
	if c := b.lockChannel(ch, false); c != nil {
		c.subscribed = false
		c.lastUsed = b.now()
		c.mu.Unlock()
	}
	return nil
}

// History implements Broker.
func (b *MemoryBroker) History(_ context.Context, ch string, q HistoryQuery) (HistoryResult, error) {
	c := b.lockChannel(ch, true)
	defer c.mu.Unlock()
	c.expire(b.now())
	res := HistoryResult{Top: Position{c.epoch, c.top}}
	first := c.top - uint64(c.n) + 1 // offset of the oldest retained publication
	after := first - 1
	if q.Since != nil {
		if q.Since.Epoch != c.epoch || q.Since.Offset > c.top || q.Since.Offset < first-1 {
			return res, nil
		}
		res.Recoverable = true
		after = q.Since.Offset
	}
	count := int(c.top - after)
	if q.Limit >= 0 && count > q.Limit {
		count = q.Limit
	}
	if count > 0 {
		res.Publications = make([]*Publication, 0, count)
		start := c.n - int(c.top-after)
		for i := 0; i < count; i++ {
			res.Publications = append(res.Publications, c.at(start+i))
		}
	}
	return res, nil
}

func (c *memoryChannel) at(i int) *Publication { return c.hist[(c.head+i)%len(c.hist)] }

// append adds p, keeping at most size publications.
func (c *memoryChannel) append(p *Publication, size int) {
	if size <= 0 {
		c.hist, c.head, c.n = nil, 0, 0
		return
	}
	if len(c.hist) != size {
		c.resize(size)
	}
	if c.n == size {
		c.hist[c.head] = nil
		c.head = (c.head + 1) % size
		c.n--
	}
	c.hist[(c.head+c.n)%size] = p
	c.n++
}

// resize changes the ring's capacity, keeping the newest publications.
func (c *memoryChannel) resize(size int) {
	keep := min(c.n, size)
	hist := make([]*Publication, size)
	for i := 0; i < keep; i++ {
		hist[i] = c.at(c.n - keep + i)
	}
	c.hist, c.head, c.n = hist, 0, keep
}

// expire drops publications older than the TTL and keys past their expiry.
func (c *memoryChannel) expire(now time.Time) {
	if c.ttl > 0 {
		cut := now.Add(-c.ttl).UnixMilli()
		for c.n > 0 && c.at(0).Time < cut {
			c.hist[c.head] = nil
			c.head = (c.head + 1) % len(c.hist)
			c.n--
		}
	}
	for len(c.keyOrder) > 0 && !c.keyOrder[0].expires.After(now) {
		e := c.keyOrder[0]
		delete(c.keys, e.key)
		c.keyOrder = c.keyOrder[1:]
	}
	if len(c.keyOrder) == 0 {
		c.keyOrder, c.keys = nil, nil
	}
}

func (b *MemoryBroker) sweepLoop(every time.Duration) {
	defer b.stopped.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.sweep()
		}
	}
}

// sweep drops expired history and forgets channels idle past IdleChannelTTL.
func (b *MemoryBroker) sweep() {
	now := b.now()
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for name, c := range sh.chans {
			c.mu.Lock()
			c.expire(now)
			idle := !c.subscribed && c.n == 0 && len(c.keys) == 0 && now.Sub(c.lastUsed) > b.idleTTL
			c.dead = idle // a caller holding c from before must look it up again
			c.mu.Unlock()
			if idle {
				delete(sh.chans, name)
			}
		}
		sh.mu.Unlock()
	}
}

// newEpoch returns 8 random URL-safe characters.
func newEpoch() string {
	var raw [6]byte
	if _, err := rand.Read(raw[:]); err != nil {
		panic("session: crypto/rand failed: " + err.Error())
	}
	return b64.EncodeToString(raw[:])
}
