package session

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryBroker keeps channel histories in this process. Its epochs are
// random, so a restart (which loses history) is visible to clients as an
// epoch change and they are told recovered: false.
//
// Only channels with something to remember hold state: a subscriber, a
// retained publication or key, or (for IdleChannelTTL) the position of a
// channel that has had publications. A channel that has never had a
// publication is forgotten as soon as its last subscriber leaves, and reading
// the history of an unknown channel creates nothing, so subscribing to (or
// reading) many distinct names leaves nothing behind. Such channels share
// their shard's fresh epoch (see memoryShard.fresh), which is how a client
// that saw the channel empty still resumes it with recovered: true.
type MemoryBroker struct {
	shards  [memoryShards]memoryShard
	seed    maphash.Seed
	handler BrokerHandler
	now     func() time.Time

	idleTTL     time.Duration // see MemoryBrokerConfig.IdleChannelTTL
	maxChannels int64         // see MemoryBrokerConfig.MaxChannels
	channels    atomic.Int64  // channel states held, in every shard
	full        chan struct{} // a create met the cap: sweep now (see sweepLoop)
	stop        chan struct{}
	stopped     sync.WaitGroup

	// presence is kept apart from the channels' histories (see
	// broker_memory_presence.go).
	presence memoryPresence
}

const memoryShards = 64

type memoryShard struct {
	mu    sync.Mutex
	chans map[string]*memoryChannel
	// fresh is the epoch a channel of this shard starts in, and the one an
	// unknown channel reports. Offset 0 in it means "nothing published", and
	// that stays true while the channels started in it are either held or
	// were forgotten before their first publication. When the sweep forgets
	// a channel that had publications in fresh, fresh changes, so that a
	// client holding (fresh, 0) from before those publications is told
	// recovered: false instead of missing them silently.
	fresh string
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
	dead       bool // dropped from its shard; see lockChannel
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
	// MaxChannels caps the channel states held at once. Near the cap (from
	// 90 %), the sweep forgets channels with nothing retained at once
	// rather than after IdleChannelTTL; at the cap, a subscribe or publish
	// that would start a new channel fails with ErrChannelLimit, and
	// starts a sweep (at most one a second), while existing channels go
	// on working. Default DefaultMaxBrokerChannels.
	MaxChannels int
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
	if cfg.MaxChannels <= 0 {
		cfg.MaxChannels = DefaultMaxBrokerChannels
	}
	b := &MemoryBroker{seed: maphash.MakeSeed(), now: cfg.Now, idleTTL: cfg.IdleChannelTTL,
		maxChannels: int64(cfg.MaxChannels), full: make(chan struct{}, 1), stop: make(chan struct{})}
	for i := range b.shards {
		b.shards[i].chans = make(map[string]*memoryChannel)
		b.shards[i].fresh = NewEpoch()
	}
	b.stopped.Add(1)
	go b.sweepLoop(cfg.SweepInterval)
	return b
}

// DefaultMaxBrokerChannels is the default MemoryBrokerConfig.MaxChannels: a
// channel with nothing retained costs about 300 bytes, one with history
// what its publications cost.
const DefaultMaxBrokerChannels = 1_000_000

var _ Broker = (*MemoryBroker)(nil)

// ChannelCount returns the number of channel states the broker holds.
func (b *MemoryBroker) ChannelCount() int { return int(b.channels.Load()) }

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

// lockChannel returns the channel's state, locked, creating it (in the
// shard's fresh epoch) if create; nil when it does not exist and create is
// false. Creating fails with ErrChannelLimit at MaxChannels.
//
// The shard lock is released before the channel lock is taken (the sweep
// takes them the other way round), so the sweep may drop the channel in
// between: it marks a dropped channel dead, and the lookup starts again
// rather than change state nobody can reach any more.
func (b *MemoryBroker) lockChannel(ch string, create bool) (*memoryChannel, error) {
	sh := b.shard(ch)
	for {
		sh.mu.Lock()
		c := sh.chans[ch]
		if c == nil && create {
			if b.channels.Add(1) > b.maxChannels {
				b.channels.Add(-1)
				sh.mu.Unlock()
				select { // have the sweeper make room, if there is any to make
				case b.full <- struct{}{}:
				default:
				}
				return nil, ErrChannelLimit
			}
			c = &memoryChannel{epoch: sh.fresh, lastUsed: b.now()}
			sh.chans[ch] = c
		}
		sh.mu.Unlock()
		if c == nil {
			return nil, nil
		}
		c.mu.Lock()
		if !c.dead {
			return c, nil
		}
		c.mu.Unlock()
	}
}

// unused reports whether c holds nothing worth keeping now: no subscriber,
// and never a publication (so its position is (fresh epoch, 0), which an
// unknown channel reports as well). c.mu must be held.
func (c *memoryChannel) unused() bool { return !c.subscribed && c.top == 0 }

// forgetIfUnused drops ch's state c if it is unused, taking the locks in the
// sweep's order. Neither lock may be held on entry.
func (b *MemoryBroker) forgetIfUnused(ch string, c *memoryChannel) {
	sh := b.shard(ch)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || !c.unused() || sh.chans[ch] != c {
		return
	}
	c.dead = true
	delete(sh.chans, ch)
	b.channels.Add(-1)
}

// Publish implements Broker.
func (b *MemoryBroker) Publish(_ context.Context, ch string, data json.RawMessage, opts PublishOptions) (PublishResult, error) {
	now := b.now()
	c, err := b.lockChannel(ch, true)
	if err != nil {
		return PublishResult{}, err
	}
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
	c, err := b.lockChannel(ch, true)
	if err != nil {
		return err
	}
	c.subscribed = true
	c.mu.Unlock()
	return nil
}

// Unsubscribe implements Broker. A channel that never had a publication is
// forgotten at once.
func (b *MemoryBroker) Unsubscribe(_ context.Context, ch string) error {
	c, _ := b.lockChannel(ch, false)
	if c == nil {
		return nil
	}
	c.subscribed = false
	c.lastUsed = b.now()
	unused := c.unused()
	c.mu.Unlock()
	if unused {
		b.forgetIfUnused(ch, c)
	}
	return nil
}

// History implements Broker. An unknown channel is answered as an empty
// one in its shard's fresh epoch, and is not created.
func (b *MemoryBroker) History(_ context.Context, ch string, q HistoryQuery) (HistoryResult, error) {
	c, _ := b.lockChannel(ch, false)
	if c == nil {
		sh := b.shard(ch)
		sh.mu.Lock()
		c = &memoryChannel{epoch: sh.fresh} // what lockChannel would create
		sh.mu.Unlock()
		c.mu.Lock()
	}
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

// append adds p, keeping at most size publications. c.mu must be held.
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
// c.mu must be held.
func (c *memoryChannel) resize(size int) {
	keep := min(c.n, size)
	hist := make([]*Publication, size)
	for i := 0; i < keep; i++ {
		hist[i] = c.at(c.n - keep + i)
	}
	c.hist, c.head, c.n = hist, 0, keep
}

// expire drops publications older than the TTL and keys past their expiry.
// c.mu must be held.
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
	var lastFull time.Time
	for {
		select {
		case <-b.stop:
			return
		case <-b.full:
			// At the cap every create is refused, and a sweep walks every
			// channel: once a second is enough to make room.
			if time.Since(lastFull) < time.Second {
				continue
			}
			lastFull = time.Now()
			b.sweep()
		case <-t.C:
			b.sweep()
		}
	}
}

// sweep drops expired history and forgets channels with nothing retained:
// at once if they never had a publication, else once idle past
// IdleChannelTTL (their position lets a client that missed nothing
// resume), or at once as well when the broker is near MaxChannels: a
// client resuming such a channel is then told recovered: false, which is
// better than refusing new channels while old positions are kept.
func (b *MemoryBroker) sweep() {
	now := b.now()
	idleTTL := b.idleTTL
	if b.channels.Load() >= b.maxChannels-b.maxChannels/10 {
		idleTTL = 0
	}
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		rotate := false
		for name, c := range sh.chans {
			c.mu.Lock()
			c.expire(now)
			idle := !c.subscribed && c.n == 0 && len(c.keys) == 0 && (c.top == 0 || idleTTL == 0 || now.Sub(c.lastUsed) > idleTTL)
			c.dead = idle // a caller holding c from before must look it up again
			if idle && c.top > 0 && c.epoch == sh.fresh {
				rotate = true
			}
			c.mu.Unlock()
			if idle {
				delete(sh.chans, name)
				b.channels.Add(-1)
			}
		}
		if rotate {
			// A channel that had publications in fresh is gone: were it
			// started again in fresh, (fresh, 0) would look like nothing
			// was missed. See memoryShard.fresh.
			sh.fresh = NewEpoch()
		}
		sh.mu.Unlock()
	}
}
