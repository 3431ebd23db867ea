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

// controlScript logs an order and publishes it with its id, at once. The
// log's epoch is set with its first order: a log that is lost (a flush, a
// Redis restarted without persistence) comes back with another, which
// tells the readers to start over. An order's id is the epoch and its
// entry id, so that ids of two logs never meet.
//
//	KEYS[1] order log, KEYS[2] its epoch
//	ARGV    order JSON (an object), control channel, retention (ms), most
//	        entries, a new epoch
//
// Returns the order's id.
var controlScript = goredis.NewScript(`
redis.call('SET', KEYS[2], ARGV[5], 'NX')
local e = redis.call('GET', KEYS[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = redis.call('XADD', KEYS[1], 'MINID', '~', now - tonumber(ARGV[3]), '*', 'o', ARGV[1], 'e', e)
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[4])
redis.call('PUBLISH', ARGV[2], '{"id":"' .. e .. '/' .. id .. '",' .. string.sub(ARGV[1], 2))
return e .. '/' .. id
`)

// logClockScript returns the time of the server holding the log (TIME
// sent alone would go to any server of a Cluster) and the log's epoch.
//
//	KEYS[1] the log's epoch
var logClockScript = goredis.NewScript(`
local t = redis.call('TIME')
return {t[1], t[2], redis.call('GET', KEYS[1]) or ''}
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
	// done holds the ids of the orders carried out, so that pub/sub and the
	// log carry out each once.
	done idSet
	// pending are orders read from the log that pub/sub had not brought,
	// with when they were read; each is handed over once it has waited
	// orderGrace and pub/sub still has not brought it.
	pending []pendingOrder
}

type pendingOrder struct {
	session.Control
	read time.Time
}

// idSet remembers order ids for at least the log's retention and doneSlack
// more (a read from the log's start, which skips what the retention has
// passed, finds none it forgot), and for at least the last maxLoggedOrders
// orders (the most the log holds), in two generations: an id is let go
// when the generation it is in is dropped, after both those bounds. It
// holds at most 2·maxLoggedOrders ids (about 80 bytes each).
type idSet struct {
	cur, prev map[string]struct{}
	since     time.Time // when cur was started
}

func (s *idSet) has(id string) bool {
	_, a := s.cur[id]
	_, b := s.prev[id]
	return a || b
}

func (s *idSet) add(id string, now time.Time) {
	if s.cur == nil || now.Sub(s.since) > orderRetention+doneSlack || len(s.cur) >= maxLoggedOrders {
		s.prev, s.cur, s.since = s.cur, make(map[string]struct{}), now
	}
	s.cur[id] = struct{}{}
}

// doneSlack is how much longer than the log's retention an order's id is
// kept at the least: more than twice the clock difference between Redis
// and a node that OPERATIONS.md allows (NTP keeps it to milliseconds).
const doneSlack = time.Minute

// entryMillis is the Redis time in a log entry's id ("<ms>-<seq>").
func entryMillis(id string) uint64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(ms, 10, 64)
	return n
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
	if c.orders.done.has(id) {
		return false
	}
	c.orders.done.add(id, time.Now())
	return true
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

// orderGrace is how long an order read from the log waits for its pub/sub
// copy before it is carried out as late: half a heartbeat, so that the
// next read hands it over.
func (c *fleet) orderGrace() time.Duration { return c.heartbeat / 2 }

// readOrders hands the node, as late, the pending orders whose pub/sub
// copy has not come within orderGrace, then reads the log from where the
// last read stopped and keeps what pub/sub has not brought as pending.
//
// It reads the whole log again (what the node carried out is skipped by
// id) at start, after a read that failed for another reason than its
// deadline, and when the log's epoch changed: in those cases the newest
// entries the node read may be gone (a failover that lost them, a lost
// log) and new ones may have taken ids before the last it read. A read cut
// by its deadline (a long log read from its start) goes on from where it
// stopped at the next heartbeat.
func (b *Broker) readOrders(ctx context.Context) (err error) {
	c := &b.fleet
	c.mu.Lock()
	from, started, known := c.orders.last, c.orders.started, c.orders.epoch
	c.mu.Unlock()
	b.handOver(b.duePending(time.Now()), started)
	defer func() {
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			c.mu.Lock()
			c.orders.last = "" // read everything again next time
			c.mu.Unlock()
		}
	}()

	clock, err := logClockScript.Run(ctx, b.client, []string{b.ordersEpochKey()}).StringSlice()
	if err != nil || len(clock) != 3 {
		return fmt.Errorf("redis: read the order log's epoch: %w", err)
	}
	sec, _ := strconv.ParseInt(clock[0], 10, 64)
	usec, _ := strconv.ParseInt(clock[1], 10, 64)
	oldest := uint64(time.Unix(sec, usec*1000).Add(-orderRetention).UnixMilli())
	epoch := clock[2]
	if epoch != known {
		if known != "" {
			b.log.Warn("redis: the order log was lost and started again; reading it from its start")
		}
		from = ""
		c.mu.Lock()
		c.orders.epoch, c.orders.last = epoch, ""
		c.mu.Unlock()
	}
	for {
		start := "-"
		if from != "" {
			start = "(" + from
		}
		entries, err := b.client.XRangeN(ctx, b.ordersKey(), start, "+", orderPage).Result()
		if err != nil {
			return fmt.Errorf("redis: read the order log: %w", err)
		}
		var read []session.Control
		for _, e := range entries {
			from = e.ID
			if entryMillis(e.ID) < oldest {
				// Past the retention, left until the next order trims it:
				// expired, and its id may be forgotten.
				continue
			}
			var o session.Control
			raw, _ := e.Values["o"].(string)
			if err := json.Unmarshal([]byte(raw), &o); err != nil {
				b.log.Error("redis: undecodable control order in the log", "id", e.ID, "err", err)
				continue
			}
			ep, _ := e.Values["e"].(string)
			o.ID, o.Late = ep+"/"+e.ID, true
			read = append(read, o)
		}
		b.took(read, from, started)
		if len(entries) < orderPage {
			break
		}
	}
	c.mu.Lock()
	if c.orders.last == "" {
		c.orders.last = "0-0" // an empty log: later reads start after nothing
	}
	c.orders.started = true
	c.mu.Unlock()
	return nil
}

// took records one page of the log read up to last: its orders that are
// not carried out yet become pending, or, at start (nothing is in flight
// on pub/sub that the node would wait for), are handed over at once.
func (b *Broker) took(read []session.Control, last string, started bool) {
	c := &b.fleet
	now := time.Now()
	c.mu.Lock()
	c.orders.last = last
	if started {
		for _, o := range read {
			if !c.orders.done.has(o.ID) { // a read from the start finds most done
				c.orders.pending = append(c.orders.pending, pendingOrder{o, now})
			}
		}
	}
	c.mu.Unlock()
	if !started {
		b.handOver(read, false)
	}
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
		done := c.orders.done.has(p.ID)
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
