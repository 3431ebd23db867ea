package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waterspout/waterspout/session"
)

// subscription is this node's subscription to one channel.
type subscription struct {
	ready chan struct{} // closed when the first Subscribe finished; err says how
	err   error
	live  bool   // Subscribe succeeded; guarded by Broker.mu
	shard *shard // in a cluster, the connection it is on; guarded by Broker.mu
}

// newPubSub opens the broker's pub/sub connection (lazily: it connects on
// first use).
func (b *Broker) newPubSub() *goredis.PubSub {
	return b.client.Subscribe(context.Background())
}

// subscribeCmd writes the SUBSCRIBE of ch and returns the connection it
// went on. Lock cmdMu must be held.
func (b *Broker) subscribeCmd(ctx context.Context, ch string, sub *subscription) (*goredis.PubSub, error) {
	if b.cluster {
		return b.clusterSubscribe(ctx, ch, sub)
	}
	return b.ps, b.ps.Subscribe(ctx, b.pubChannel(ch))
}

// unsubscribeCmd writes the UNSUBSCRIBE of ch. Lock cmdMu must be held.
func (b *Broker) unsubscribeCmd(ctx context.Context, ch string, sub *subscription) error {
	if !b.cluster {
		return b.ps.Unsubscribe(ctx, b.pubChannel(ch))
	}
	b.mu.Lock()
	s := sub.shard
	b.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.ps.SUnsubscribe(ctx, b.pubChannel(ch))
}

// channelOf returns the WaterSpout channel of a pub/sub channel name.
func (b *Broker) channelOf(name string) (string, bool) {
	ch, ok := strings.CutPrefix(name, b.pubPrefix)
	if ok && b.cluster {
		ch, ok = strings.CutPrefix(ch, "{")
		if ok {
			ch, ok = strings.CutSuffix(ch, "}")
		}
	}
	return ch, ok
}

// Subscribe implements session.Broker. It returns once Redis has confirmed
// the subscription, so a publication made after it returns is delivered.
func (b *Broker) Subscribe(ctx context.Context, ch string) error {
	ctx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	defer cancel()

	b.cmdMu.Lock()
	b.mu.Lock()
	if sub := b.subs[ch]; sub != nil {
		// Subscribed already, or another call is subscribing: share its outcome.
		b.mu.Unlock()
		b.cmdMu.Unlock()
		select {
		case <-sub.ready:
			if sub.err != nil {
				return fmt.Errorf("redis: subscribe %q: %w", ch, sub.err)
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("redis: subscribe %q: %w", ch, ctx.Err())
		}
	}
	sub := &subscription{ready: make(chan struct{})}
	b.subs[ch] = sub
	refusals := b.refusals
	b.mu.Unlock()
	ps, err := b.subscribeCmd(ctx, ch, sub)
	b.cmdMu.Unlock()

	if err == nil {
		err = b.sync(ctx, ps)
	}
	if err == nil {
		b.mu.Lock()
		if b.refusals != refusals {
			// Redis refused a command between our SUBSCRIBE and the PONG,
			// perhaps the SUBSCRIBE itself (an ACL, say): do not claim it.
			err = errRefused
		}
		b.mu.Unlock()
	}
	if err != nil {
		b.abandon(ch, sub, err)
		return fmt.Errorf("redis: subscribe %q: %w", ch, err)
	}
	b.mu.Lock()
	sub.live = true
	b.mu.Unlock()
	close(sub.ready)
	return nil
}

// abandon undoes a Subscribe that failed, so that a later one starts afresh
// and go-redis does not resubscribe the channel after a reconnect.
func (b *Broker) abandon(ch string, sub *subscription, err error) {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	b.mu.Lock()
	if b.subs[ch] == sub {
		delete(b.subs, ch)
	}
	b.mu.Unlock()
	sub.err = err
	close(sub.ready)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// Best effort: go-redis forgets the channel even when the write fails,
	// and a stray delivery for an unknown channel is dropped.
	_ = b.unsubscribeCmd(ctx, ch, sub)
}

// Unsubscribe implements session.Broker.
func (b *Broker) Unsubscribe(ctx context.Context, ch string) error {
	b.mu.Lock()
	sub := b.subs[ch]
	b.mu.Unlock()
	if sub == nil {
		return nil
	}
	// Never unsubscribe under a Subscribe still waiting for Redis.
	select {
	case <-sub.ready:
	case <-ctx.Done():
		return fmt.Errorf("redis: unsubscribe %q: %w", ch, ctx.Err())
	}
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	b.mu.Lock()
	if b.subs[ch] != sub {
		b.mu.Unlock()
		return nil
	}
	delete(b.subs, ch)
	b.mu.Unlock()
	if err := b.unsubscribeCmd(ctx, ch, sub); err != nil {
		return fmt.Errorf("redis: unsubscribe %q: %w", ch, err)
	}
	return nil
}

// sync returns once Redis has answered every command this node wrote to the
// pub/sub connection before the call: it sends a PING with a unique payload
// and waits for its PONG, as Redis answers a connection's commands in order.
// If the connection is lost meanwhile, go-redis resubscribes on the next one
// and sync asks again there.
func (b *Broker) sync(ctx context.Context, ps *goredis.PubSub) error {
	for {
		token := "sync-" + session.NewEpoch() + session.NewEpoch()
		done := make(chan struct{})
		b.mu.Lock()
		b.barriers[token] = done
		lost := b.lost
		if !b.cluster {
			ps = b.ps // replaced after a failover: see switchPubSub
		}
		b.mu.Unlock()

		err := ps.Ping(ctx, token)
		if err == nil {
			select {
			case <-done:
				return nil
			case <-lost:
				// The PING may have gone down with the connection: ask again.
			case <-ctx.Done():
				err = ctx.Err()
			case <-b.closing:
				err = ErrClosed
			}
		}
		b.mu.Lock()
		delete(b.barriers, token)
		b.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// receive is the one goroutine reading the pub/sub connection: it delivers
// publications in the order Redis published them, completes barriers, and
// turns every loss of the connection into HandleGap for the channels that
// may have missed publications. go-redis reconnects and resubscribes when
// the next read finds the connection gone.
func (b *Broker) receive() {
	defer close(b.done)
	failures := 0 // consecutive failed reads: 0 while connected
	b.readLoop(reader{
		conn: func() *goredis.PubSub {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.ps
		},
		lost: func(err error, replaced bool) bool {
			if replaced {
				// switchPubSub closed this connection for one to the new
				// master: publications may have been missed in between.
				failures = 0
				b.connectionLost(errors.New("the master changed"), true)
				return true
			}
			failures++
			b.psDown.Store(true)
			b.connectionLost(err, failures == 1)
			return b.sleep(backoff(failures))
		},
		read: func() {
			if failures > 0 {
				b.log.Info("redis pub/sub connection restored")
				failures = 0
				b.psConnects.Add(1)
				b.psDown.Store(false)
			}
		},
		subscription: func(m *goredis.Subscription) {
			if m.Kind == "subscribe" {
				b.confirmed(m.Channel)
			}
		},
	})
}

// reader is what readLoop needs to know about one pub/sub connection.
type reader struct {
	// conn returns the connection to read now. A single server's is
	// replaced after a failover (see switchPubSub).
	conn func() *goredis.PubSub
	// lost is called when a read fails for any other reason than a quiet
	// connection or a refused command: replaced says conn no longer returns
	// the connection that failed. It returns whether to read on.
	lost func(err error, replaced bool) bool
	// read, if set, is called after every successful read.
	read func()
	// subscription handles a (un)subscribe message.
	subscription func(*goredis.Subscription)
	// logArgs are added to the reader's log lines.
	logArgs []any
}

// readLoop reads pub/sub connections as r describes until the broker
// closes or r.lost says to stop: it delivers publications, completes
// barriers, counts refused commands, and probes a connection silent for
// pingEvery with a PING, taking an unanswered probe for a lost connection.
func (b *Broker) readLoop(r reader) {
	ctx := context.Background()
	probing := false // a PING is out because the connection went quiet
	for {
		var msg any
		var err error
		ps := r.conn()
		if probing {
			// A timeout now means the probe went unanswered: with a context
			// deadline instead of a read timeout, go-redis treats it as a
			// broken connection and reconnects.
			rctx, cancel := context.WithTimeout(ctx, b.pingEvery)
			msg, err = ps.ReceiveTimeout(rctx, 0)
			cancel()
		} else {
			msg, err = ps.ReceiveTimeout(ctx, b.pingEvery)
		}
		if err != nil {
			select {
			case <-b.closing:
				return
			default:
			}
			replaced := r.conn() != ps
			if !replaced {
				var nerr net.Error
				var rerr goredis.Error
				switch {
				case !probing && errors.As(err, &nerr) && nerr.Timeout():
					probing = true
					pctx, cancel := context.WithTimeout(ctx, b.pingEvery)
					_ = ps.Ping(pctx) // its failure shows up on the next read
					cancel()
					continue
				case errors.As(err, &rerr):
					// Redis refused a command on the connection, which stays
					// up (in a cluster: MOVED, when the slot moved between
					// the routing and the SSUBSCRIBE; an ACL).
					b.log.Error("redis pub/sub command refused", append(r.logArgs, "err", err)...)
					b.mu.Lock()
					b.refusals++
					b.mu.Unlock()
					continue
				}
			}
			probing = false
			if !r.lost(err, replaced) {
				return
			}
			continue
		}
		probing = false
		if r.read != nil {
			r.read()
		}
		switch m := msg.(type) {
		case *goredis.Message:
			b.deliver(m)
		case *goredis.Subscription:
			r.subscription(m)
		case *goredis.Pong:
			b.pong(m.Payload)
		}
	}
}

// switchPubSub replaces the pub/sub connection with one to the current
// master, subscribed to every channel. After a failover in which the old
// master stays up (a SENTINEL FAILOVER, a partition), the old connection
// stays open and silent until Sentinel demotes the old master, about 10 s
// later: publications go to the new master meanwhile. The receive loop sees
// the old connection closed and reports the gap.
func (b *Broker) switchPubSub() {
	b.cmdMu.Lock()
	select {
	case <-b.closing:
		b.cmdMu.Unlock()
		return
	default:
	}
	b.mu.Lock()
	names := make([]string, 0, len(b.subs))
	for ch := range b.subs {
		names = append(names, b.pubChannel(ch))
	}
	old := b.ps
	b.mu.Unlock()
	ps := b.newPubSub()
	if len(names) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), subscribeTimeout)
		// A failure shows up on the receive loop's next read, which
		// reconnects and resubscribes.
		_ = ps.Subscribe(ctx, names...)
		cancel()
	}
	b.mu.Lock()
	b.ps = ps
	b.mu.Unlock()
	b.cmdMu.Unlock()
	b.log.Warn("redis master changed; pub/sub moved to it", "channels", len(names))
	_ = old.Close()
}

func backoff(failures int) time.Duration {
	return min(50*time.Millisecond<<min(failures-1, 6), time.Second)
}

// sleep waits d and reports whether the broker is still open.
func (b *Broker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.closing:
		return false
	}
}

// connectionLost reports a gap on every channel: publications made from now
// until go-redis has resubscribed are not delivered. Sessions then resume
// from history, recovered or told they were not. The gap is reported once
// per outage here, and again per channel when its resubscription is confirmed
// (see confirmed), which covers sessions that joined during the outage.
func (b *Broker) connectionLost(err error, first bool) {
	b.mu.Lock()
	close(b.lost)
	b.lost = make(chan struct{})
	var chans []string
	if first {
		chans = make([]string, 0, len(b.subs))
		for ch := range b.subs {
			chans = append(chans, ch)
		}
	}
	b.mu.Unlock()
	if !first {
		return
	}
	b.log.Warn("redis pub/sub connection down; subscribed channels resume from history",
		"err", err, "channels", len(chans))
	if h := b.handle(); h != nil {
		for _, ch := range chans {
			h.HandleGap(ch)
		}
	}
}

// confirmed handles Redis's confirmation of a SUBSCRIBE. For a channel that
// was already live it can only come from go-redis resubscribing on a new
// connection: publications may have been missed in between.
func (b *Broker) confirmed(name string) {
	ch, ok := strings.CutPrefix(name, b.pubPrefix)
	if !ok {
		return
	}
	b.mu.Lock()
	sub := b.subs[ch]
	resubscribed := sub != nil && sub.live
	if resubscribed {
		// A reconnect this loop did not see as a read error: PINGs of
		// pending barriers may have been lost with the old connection.
		close(b.lost)
		b.lost = make(chan struct{})
		b.psConnects.Add(1)
	}
	b.mu.Unlock()
	if h := b.handle(); resubscribed && h != nil {
		h.HandleGap(ch)
	}
}

func (b *Broker) deliver(m *goredis.Message) {
	ch, ok := b.channelOf(m.Channel)
	if !ok {
		return
	}
	b.mu.Lock()
	_, subscribed := b.subs[ch]
	b.mu.Unlock()
	if !subscribed {
		return // in flight when the channel was unsubscribed
	}
	if b.deliverJoinLeave(ch, m.Payload) {
		return
	}
	h := b.handle()
	if h == nil {
		return
	}
	if b.cluster {
		// Several shard receivers and resubscribers call the handler.
		mu := b.callLock(ch)
		mu.Lock()
		defer mu.Unlock()
	}
	p, err := decodePublication(ch, m.Payload)
	if err != nil {
		// Not ours, or corrupted: it stood for a publication that is now lost.
		b.log.Error("redis: undecodable publication; channel resumes from history", "channel", ch, "err", err)
		h.HandleGap(ch)
		return
	}
	h.HandlePublication(p)
}

func (b *Broker) pong(payload string) {
	b.mu.Lock()
	done := b.barriers[payload]
	delete(b.barriers, payload)
	b.mu.Unlock()
	if done != nil {
		close(done)
	}
}
