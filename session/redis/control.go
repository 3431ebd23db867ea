package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waterspout/waterspout/session"
)

// Control orders (POST /api/disconnect, /api/unsubscribe) reach every node
// twice over. Live, on the pub/sub channel ws:control, in milliseconds. And
// from the order log, the stream ws:orders, which every node reads at each
// heartbeat: pub/sub delivers only to connections that are up when the
// order is published, so a node cut off from Redis then (a restart of
// Redis, a partition, an idle connection a proxy dropped unseen), or
// started since, would otherwise never hear of it and its users' sessions
// would go on. An order read from the log that pub/sub did not bring is
// handed over as late (session.Control.Late): it ends only what existed
// when it was given. Each order is carried out once on a node, whichever
// way it came first.

const (
	// orderRetention is how long the log keeps an order: a node cut off
	// from Redis for up to this long carries out, once back, every order
	// it missed. It is longer than a poll lease (35 s by default), so a
	// node that starts reads every order a poller's next poll can meet.
	orderRetention = 10 * time.Minute
	// maxLoggedOrders bounds the log (about 200 bytes an order) whatever
	// the rate of orders.
	maxLoggedOrders = 100_000
	// orderPage is how many orders one read of the log takes.
	orderPage = 1000
)

func (b *Broker) controlChannel() string { return b.prefix + "control" }
func (b *Broker) ordersKey() string      { return b.prefix + "orders" }

// controlScript logs an order and publishes it with its log id, at once.
//
//	KEYS[1] order log
//	ARGV    order JSON (an object), control channel, retention (ms), most entries
//
// Returns the order's id in the log.
var controlScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = redis.call('XADD', KEYS[1], 'MINID', '~', now - tonumber(ARGV[3]), '*', 'o', ARGV[1])
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[4])
redis.call('PUBLISH', ARGV[2], '{"id":"' .. id .. '",' .. string.sub(ARGV[1], 2))
return id
`)

// Control implements session.Cluster: the order goes into the log and out
// on the control channel in one script, so every node, this one included,
// runs it, live or from the log.
func (b *Broker) Control(ctx context.Context, c session.Control) error {
	c.ID, c.Late = "", false
	msg, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("redis: control: %w", err)
	}
	args := []any{msg, b.controlChannel(), orderRetention.Milliseconds(), maxLoggedOrders}
	if err := controlScript.Run(ctx, b.client, []string{b.ordersKey()}, args...).Err(); err != nil {
		return fmt.Errorf("redis: control: %w", err)
	}
	return nil
}

// orders is what a node knows of the order log, guarded by fleet.mu.
type orders struct {
	// last is the id of the last log entry read; "" before the first read.
	last string
	// done holds the ids of the orders carried out, with the milliseconds
	// of each, so that pub/sub and the log carry out each once.
	done map[string]int64
	// pending are orders read from the log that pub/sub had not brought
	// yet; they are handed over at the next read if it still has not.
	pending []session.Control
}

// streamID is a log entry id: Redis milliseconds and a sequence number.
type streamID struct{ ms, seq uint64 }

func parseStreamID(id string) streamID {
	ms, seq, _ := strings.Cut(id, "-")
	a, _ := strconv.ParseUint(ms, 10, 64)
	b, _ := strconv.ParseUint(seq, 10, 64)
	return streamID{a, b}
}

func (a streamID) less(b streamID) bool { return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq }

// firstTime reports whether the order with id is not yet carried out, and
// marks it carried out. An order without an id (from a node of a version
// before the log) is always new.
func (b *Broker) firstTime(id string) bool {
	if id == "" {
		return true
	}
	c := &b.fleet
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.orders.done[id]; ok {
		return false
	}
	if c.orders.done == nil {
		c.orders.done = make(map[string]int64)
	}
	c.orders.done[id] = int64(parseStreamID(id).ms)
	return true
}

// isDone reports whether the order with id was carried out.
func (b *Broker) isDone(id string) bool {
	b.fleet.mu.Lock()
	defer b.fleet.mu.Unlock()
	_, ok := b.fleet.orders.done[id]
	return ok
}

// controlLoop runs the orders of ws:control as they come. go-redis
// reconnects and resubscribes by itself; the orders published meanwhile
// are read from the log (ordersLoop).
func (b *Broker) controlLoop(ps *goredis.PubSub) {
	defer b.fleet.wg.Done()
	go func() {
		<-b.fleet.stop
		ps.Close()
	}()
	ch := ps.Channel(goredis.WithChannelSize(1000))
	for m := range ch {
		var c session.Control
		if err := json.Unmarshal([]byte(m.Payload), &c); err != nil {
			b.log.Error("redis: undecodable control order", "err", err)
			continue
		}
		if h := b.clusterHandler(); h != nil && b.firstTime(c.ID) {
			h.HandleControl(c)
		}
	}
}

// ordersLoop reads the order log at every heartbeat, on a goroutine of its
// own: carrying out many late orders must not delay the heartbeat, or the
// other nodes would take this one for dead.
func (b *Broker) ordersLoop() {
	b.everyBeat("redis: order log read failed", b.readOrders)
}

// readOrders hands the node, as late, the orders of the previous read that
// pub/sub has still not brought, then reads the log from where the last
// read stopped. An order is held back one read because a node that is
// connected may read it before its pub/sub copy arrives.
func (b *Broker) readOrders(ctx context.Context) error {
	c := &b.fleet
	c.mu.Lock()
	from, first, pending := c.orders.last, c.orders.last == "", c.orders.pending
	c.orders.pending = nil
	c.mu.Unlock()
	b.handOver(pending, !first)

	var read []session.Control
	for {
		start := "-"
		if from != "" {
			start = "(" + from
		}
		entries, err := b.client.XRangeN(ctx, b.ordersKey(), start, "+", orderPage).Result()
		if err != nil {
			return fmt.Errorf("redis: read the order log: %w", err)
		}
		for _, e := range entries {
			from = e.ID
			var o session.Control
			raw, _ := e.Values["o"].(string)
			if err := json.Unmarshal([]byte(raw), &o); err != nil {
				b.log.Error("redis: undecodable control order in the log", "id", e.ID, "err", err)
				continue
			}
			o.ID, o.Late = e.ID, true
			read = append(read, o)
		}
		if len(entries) == 0 && from != "" {
			if reset, err := b.logRewound(ctx, from); err != nil {
				return err
			} else if reset {
				from = ""
				continue
			}
		}
		if len(entries) < orderPage {
			break
		}
	}
	c.mu.Lock()
	if from == "" {
		from = "0-0" // an empty log: later reads start after nothing
	}
	c.orders.last = from
	c.mu.Unlock()
	if first {
		// At start nothing can be in flight on pub/sub that the node would
		// wait for: hand over at once.
		b.handOver(read, false)
	} else {
		c.mu.Lock()
		c.orders.pending = read
		c.mu.Unlock()
	}
	b.forgetOrders(parseStreamID(from))
	return nil
}

// handOver gives the node each of list that is not yet carried out; warn
// logs how many there were.
func (b *Broker) handOver(list []session.Control, warn bool) {
	h := b.clusterHandler()
	if h == nil {
		return
	}
	late := 0
	for _, o := range list {
		if b.firstTime(o.ID) {
			late++
			h.HandleControl(o)
		}
	}
	if late > 0 && warn {
		b.log.Warn("redis: carried out control orders this node missed live", "orders", late)
	}
}

// logRewound reports whether the node must read the log again from its
// start, because its newest id is older than from, the last one this node
// read. Either the log is gone (a flush, a Redis restarted without
// persistence) or it was lost and written again by a Redis whose clock is
// behind the one that wrote from (a failover). The node then lets go of
// the ids it remembers past the new newest, which new orders may take
// again: an order carried out twice ends nothing more the second time.
func (b *Broker) logRewound(ctx context.Context, from string) (bool, error) {
	last := parseStreamID(from)
	if last == (streamID{}) {
		return false, nil // nothing read yet
	}
	top, err := b.client.XRevRangeN(ctx, b.ordersKey(), "+", "-", 1).Result()
	if err != nil {
		return false, fmt.Errorf("redis: read the order log: %w", err)
	}
	newest := streamID{}
	if len(top) > 0 {
		newest = parseStreamID(top[0].ID)
	}
	if !newest.less(last) {
		return false, nil
	}
	c := &b.fleet
	c.mu.Lock()
	for id := range c.orders.done {
		if newest.less(parseStreamID(id)) {
			delete(c.orders.done, id)
		}
	}
	c.mu.Unlock()
	if len(top) > 0 {
		b.log.Warn("redis: the order log went back in time; reading it again", "last", from, "newest", top[0].ID)
	}
	return true, nil
}

// doneWindow is how long, in the log's time, an order's id is kept after
// the log read has passed it: only a pub/sub copy still in flight could
// bring it again.
const doneWindow = time.Minute

// forgetOrders lets go of the ids of orders the log read passed more than
// doneWindow before last, in the log's own (Redis's) time.
func (b *Broker) forgetOrders(last streamID) {
	oldest := int64(last.ms) - doneWindow.Milliseconds()
	c := &b.fleet
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, ms := range c.orders.done {
		if ms < oldest {
			delete(c.orders.done, id)
		}
	}
}
