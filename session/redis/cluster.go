package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// In a Redis Cluster the scripts SPUBLISH each publication to the shard
// channel ws:pub:{channel}, which lives in the slot of the channel's keys,
// so a publication costs one shard and reaches only the nodes that
// SSUBSCRIBEd on that shard. A node keeps one pub/sub connection per master
// that owns a slot it subscribes to (a shard).
//
// go-redis would resubscribe a lost connection with one SSUBSCRIBE of every
// channel, which Redis refuses when they span several slots (CROSSSLOT). So
// a shard is never reconnected: when its connection fails, or Redis drops
// one of its channels (a slot moved away), the shard is closed, its
// channels get HandleGap, and each is subscribed again on the master that
// owns its slot now, followed by a second HandleGap for sessions that
// joined in between, as on a single server.

// shard is one sharded pub/sub connection to a cluster master.
type shard struct {
	addr string
	ps   *goredis.PubSub
	lost chan struct{} // closed when the shard is given up
}

// clusterSubscribe writes the SSUBSCRIBE of ch on the shard of the master
// that owns its slot. Lock cmdMu must be held.
func (b *Broker) clusterSubscribe(ctx context.Context, ch string, sub *subscription) (*goredis.PubSub, error) {
	cc := b.client.(*goredis.ClusterClient)
	pubch := b.pubChannel(ch)
	master, err := cc.MasterForKey(ctx, pubch)
	if err != nil {
		return nil, err
	}
	addr := master.Options().Addr
	b.mu.Lock()
	if b.shards == nil {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	s := b.shards[addr]
	fresh := s == nil
	if fresh {
		s = &shard{addr: addr, ps: cc.SSubscribe(context.Background()), lost: make(chan struct{})}
		b.shards[addr] = s
		b.shardsWG.Add(1) // under mu, so that closeShards waits for it
	}
	sub.shard = s
	b.mu.Unlock()
	err = s.ps.SSubscribe(ctx, pubch)
	if fresh {
		// Only now: go-redis opens the connection on first use, on the
		// master of the first channel's slot, or on a random node if the
		// receiver's read came first.
		go b.receiveShard(s)
	}
	return s.ps, err
}

// receiveShard reads one shard's connection until it fails or the broker
// closes, with the read loop of a single server's (see receive).
func (b *Broker) receiveShard(s *shard) {
	defer b.shardsWG.Done()
	b.readLoop(reader{
		conn: func() *goredis.PubSub { return s.ps },
		lost: func(err error, _ bool) bool {
			select {
			case <-s.lost:
			default:
				b.shardLost(s, err)
			}
			return false
		},
		subscription: func(m *goredis.Subscription) {
			if m.Kind == "sunsubscribe" {
				b.droppedByServer(s, m.Channel)
			}
		},
		logArgs: []any{"shard", s.addr},
	})
}

// droppedByServer handles a SUNSUBSCRIBE this node did not ask for: Redis
// sends one when the channel's slot leaves the master.
func (b *Broker) droppedByServer(s *shard, name string) {
	ch, ok := b.channelOf(name)
	if !ok {
		return
	}
	b.mu.Lock()
	sub := b.subs[ch]
	ours := sub != nil && sub.live && sub.shard == s
	if ours {
		sub.shard = nil
	}
	b.mu.Unlock()
	if !ours {
		return // the answer to our own SUNSUBSCRIBE
	}
	b.log.Warn("redis cluster dropped a shard channel; resubscribing", "shard", s.addr, "channel", ch)
	b.clusterGap(ch)
	b.shardsWG.Add(1)
	go b.resubscribe([]string{ch})
}

// shardLost gives up a failed shard: its channels get HandleGap and are
// subscribed again wherever their slots are now.
func (b *Broker) shardLost(s *shard, err error) {
	b.mu.Lock()
	if b.shards[s.addr] == s {
		delete(b.shards, s.addr)
	}
	close(s.lost)
	close(b.lost)
	b.lost = make(chan struct{})
	var chans []string
	for ch, sub := range b.subs {
		if sub.shard == s {
			sub.shard = nil
			chans = append(chans, ch)
		}
	}
	b.mu.Unlock()
	_ = s.ps.Close()
	b.log.Warn("redis cluster pub/sub connection down; its channels resume from history",
		"shard", s.addr, "err", err, "channels", len(chans))
	for _, ch := range chans {
		b.clusterGap(ch)
	}
	b.shardsWG.Add(1)
	go b.resubscribe(chans)
}

// resubscribe subscribes chans again, each on the master that owns its slot
// now, retrying until it succeeds, the channel is unsubscribed or the
// broker closes. The caller has added to shardsWG.
func (b *Broker) resubscribe(chans []string) {
	defer b.shardsWG.Done()
	for failures := 0; len(chans) > 0; {
		ch := chans[0]
		err := b.resubscribeOne(ch)
		if err == nil {
			chans = chans[1:]
			failures = 0
			continue
		}
		failures++
		if failures == 1 {
			b.log.Warn("redis cluster: resubscribe failed; retrying", "channel", ch, "err", err)
		}
		if !b.sleep(backoff(failures)) {
			return
		}
	}
}

func (b *Broker) resubscribeOne(ch string) error {
	ctx, cancel := context.WithTimeout(context.Background(), subscribeTimeout)
	defer cancel()
	b.cmdMu.Lock()
	b.mu.Lock()
	sub := b.subs[ch]
	if sub == nil || !sub.live || sub.shard != nil {
		// Unsubscribed meanwhile, or subscribed again by someone else.
		b.mu.Unlock()
		b.cmdMu.Unlock()
		return nil
	}
	b.mu.Unlock()
	ps, err := b.clusterSubscribe(ctx, ch, sub)
	b.cmdMu.Unlock()
	if err == nil {
		err = b.sync(ctx, ps)
	}
	if err != nil {
		b.mu.Lock()
		sub.shard = nil
		b.mu.Unlock()
		return fmt.Errorf("subscribe %q: %w", ch, err)
	}
	// Sessions that joined while the channel was not subscribed may have
	// missed publications too.
	b.clusterGap(ch)
	return nil
}

// clusterGap calls HandleGap under the channel's call lock: in a cluster
// several goroutines (shard receivers, resubscribers) call the handler,
// which must never see two calls for one channel at once.
func (b *Broker) clusterGap(ch string) {
	if h := b.handle(); h != nil {
		mu := b.callLock(ch)
		mu.Lock()
		defer mu.Unlock()
		h.HandleGap(ch)
	}
}

// callStripes is how many locks a cluster's handler calls are spread over.
// BrokerHandler only needs one channel's calls serialized: one lock for
// every channel would make the shard receivers' deliveries one at a time.
const callStripes = 64

// callLock is the lock of ch's handler calls in a cluster, chosen by an
// FNV-1a hash of the name: always the same for one channel, and rarely
// shared by channels delivered on different shards at once.
func (b *Broker) callLock(ch string) *sync.Mutex {
	h := uint32(2166136261)
	for i := 0; i < len(ch); i++ {
		h ^= uint32(ch[i])
		h *= 16777619
	}
	return &b.callMu[h%callStripes]
}

// closeShards closes every shard and waits for their receivers and
// resubscribers. The broker is closing.
func (b *Broker) closeShards() error {
	b.mu.Lock()
	shards := b.shards
	b.shards = nil
	b.mu.Unlock()
	var err error
	for _, s := range shards {
		err = errors.Join(err, s.ps.Close())
	}
	b.shardsWG.Wait()
	return err
}
