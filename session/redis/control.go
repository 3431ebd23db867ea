package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waterspout/waterspout/session"
)

// Control orders (POST /api/disconnect, /api/unsubscribe) reach every node
// twice over. Live, on the pub/sub channel ws:control, in milliseconds. And
// from the order log, the stream ws:{orders}, which every node reads at each
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

// The order log and its epoch share a hash tag: one Cluster slot.
func (b *Broker) ordersKey() string      { return b.prefix + "{orders}" }
func (b *Broker) ordersEpochKey() string { return b.prefix + "{orders}:epoch" }

// controlScript logs an order and publishes it with its log id, at once.
// The log's epoch is set with its first order: a log that is lost (a
// flush, a Redis restarted without persistence) comes back with another,
// which tells the readers to start over.
//
//	KEYS[1] order log, KEYS[2] its epoch
//	ARGV    order JSON (an object), control channel, retention (ms), most
//	        entries, a new epoch
//
// Returns the order's id in the log.
var controlScript = goredis.NewScript(`
redis.call('SET', KEYS[2], ARGV[5], 'NX')
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
	args := []any{msg, b.controlChannel(), orderRetention.Milliseconds(), maxLoggedOrders, session.NewEpoch()}
	if err := controlScript.Run(ctx, b.client, []string{b.ordersKey(), b.ordersEpochKey()}, args...).Err(); err != nil {
		return fmt.Errorf("redis: control: %w", err)
	}
	return nil
}

// orders is what a node knows of the order log, guarded by fleet.mu.
type orders struct {
	// last is the id of the last log entry read; "" before the first read
	// and after trouble (see readOrders).
	last string
	// epoch is the log's epoch at the last read.
	epoch string
	// started is set once the node has read the log once.
	started bool
	// done holds the ids of the orders carried out, with when each was
	// (this node's clock), so that pub/sub and the log carry out each once.
	// An id is kept for the log's retention and doneSlack more: a read from
	// the log's start, which skips what the retention has passed by Redis's
	// clock, finds no order that is not in done and was carried out.
	done map[string]time.Time
	// pending are orders read from the log that pub/sub had not brought,
	// with when they were read; each is handed over once it has waited
	// orderGrace and pub/sub still has not brought it.
	pending []pendingOrder
}

type pendingOrder struct {
	session.Control
	read time.Time
}

// streamID is a log entry id: Redis milliseconds and a sequence number.
type streamID struct{ ms, seq uint64 }

func parseStreamID(id string) streamID {
	ms, seq, _ := strings.Cut(id, "-")
	a, _ := strconv.ParseUint(ms, 10, 64)
	b, _ := strconv.ParseUint(seq, 10, 64)
	return streamID{a, b}
}

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
		c.orders.done = make(map[string]time.Time)
	}
	c.orders.done[id] = time.Now()
	return true
}

// doneSlack is how much longer than the log's retention an order's id is
// kept: more than twice the clock difference between Redis and a node
// that OPERATIONS.md allows (NTP keeps it to milliseconds).
const doneSlack = time.Minute

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

// orderGrace is how long an order read from the log waits for its pub/sub
// copy before it is carried out as late: half a heartbeat, so that the
// next read hands it over.
func (c *fleet) orderGrace() time.Duration { return c.heartbeat / 2 }

// readOrders hands the node, as late, the pending orders whose pub/sub
// copy has not come within orderGrace, then reads the log from where the
// last read stopped and keeps what pub/sub has not brought as pending.
//
// It reads the whole log again (what the node carried out is skipped by
// id) at start, after a failed read, and when the log's epoch changed: in
// those cases the newest entries the node read may be gone (a failover
// that lost them, a lost log) and new ones may have taken ids before the
// last it read.
func (b *Broker) readOrders(ctx context.Context) (err error) {
	c := &b.fleet
	c.mu.Lock()
	from, started, known := c.orders.last, c.orders.started, c.orders.epoch
	c.mu.Unlock()
	b.handOver(b.duePending(time.Now()), started)
	defer func() {
		if err != nil { // read everything again next time
			c.mu.Lock()
			c.orders.last = ""
			c.mu.Unlock()
		}
	}()

	// Redis's time, for what the retention has passed, and the epoch.
	pipe := b.client.Pipeline()
	clock := pipe.Time(ctx)
	getEpoch := pipe.Get(ctx, b.ordersEpochKey())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("redis: read the order log's epoch: %w", err)
	}
	epoch := getEpoch.Val()
	oldest := uint64(clock.Val().Add(-orderRetention).UnixMilli())
	if epoch != known {
		from = ""
		if known != "" {
			// Another log: its ids say nothing of the old one's.
			b.log.Warn("redis: the order log was lost and started again; reading it from its start")
			c.mu.Lock()
			c.orders.done = nil
			c.mu.Unlock()
		}
	}
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
			if parseStreamID(e.ID).ms < oldest {
				// Past the retention, left until the next order trims it:
				// expired, and its id may be forgotten.
				continue
			}
			o.ID, o.Late = e.ID, true
			read = append(read, o)
		}
		if len(entries) < orderPage {
			break
		}
	}
	now := time.Now()
	c.mu.Lock()
	c.orders.last, c.orders.epoch, c.orders.started = from, epoch, true
	if c.orders.last == "" {
		c.orders.last = "0-0" // an empty log: later reads start after nothing
	}
	if started {
		for _, o := range read {
			if _, done := c.orders.done[o.ID]; !done { // a read from the start finds most done
				c.orders.pending = append(c.orders.pending, pendingOrder{o, now})
			}
		}
	}
	for id, at := range c.orders.done {
		if now.Sub(at) > orderRetention+doneSlack {
			delete(c.orders.done, id)
		}
	}
	c.mu.Unlock()
	if !started {
		// At start nothing is in flight on pub/sub that the node would
		// wait for: hand over at once.
		b.handOver(read, false)
	}
	return nil
}

// duePending takes out of pending the orders that have waited orderGrace
// (read before now minus it) or whose pub/sub copy came meanwhile.
func (b *Broker) duePending(now time.Time) []session.Control {
	c := &b.fleet
	c.mu.Lock()
	defer c.mu.Unlock()
	var due []session.Control
	kept := c.orders.pending[:0]
	for _, p := range c.orders.pending {
		_, done := c.orders.done[p.ID]
		switch {
		case done: // pub/sub brought it: nothing to do
		case now.Sub(p.read) >= c.orderGrace():
			due = append(due, p.Control)
		default:
			kept = append(kept, p)
		}
	}
	clear(c.orders.pending[len(kept):])
	c.orders.pending = kept
	return due
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
