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
	// orderPage is how many orders one read of the log takes, and
	// orderPagesPerBeat how many reads one heartbeat makes at the most.
	orderPage         = 1000
	orderPagesPerBeat = 10
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
	// done holds the ids of the orders carried out, by the milliseconds of
	// their id, so that pub/sub and the log carry out each once; ids older
	// than twice the retention are let go.
	done map[string]int64
}

// firstTime reports whether the order with id is not yet carried out, and
// marks it carried out. An order without an id (from a node of a version
// before the log) is always new.
func (b *Broker) firstTime(id string) bool {
	if id == "" {
		return true
	}
	ms, _, _ := strings.Cut(id, "-")
	t, _ := strconv.ParseInt(ms, 10, 64)
	c := &b.fleet
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.orders.done[id]; ok {
		return false
	}
	if c.orders.done == nil {
		c.orders.done = make(map[string]int64)
	}
	c.orders.done[id] = t
	return true
}

// controlLoop runs the orders of ws:control as they come. go-redis
// reconnects and resubscribes by itself; the orders published meanwhile
// are read from the log (readOrders).
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

// readOrders reads the log from where the last read stopped and hands the
// node, as late, every order pub/sub did not bring. It runs at each
// heartbeat; the first read (at start) takes every order the log keeps.
func (b *Broker) readOrders(ctx context.Context) error {
	c := &b.fleet
	c.mu.Lock()
	from, first := c.orders.last, c.orders.last == ""
	c.mu.Unlock()
	late := 0
	defer func() {
		if late > 0 && !first {
			b.log.Warn("redis: carried out control orders this node missed live", "orders", late)
		}
	}()
	for range orderPagesPerBeat {
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
			if h := b.clusterHandler(); h != nil && b.firstTime(o.ID) {
				late++
				h.HandleControl(o)
			}
		}
		c.mu.Lock()
		if from != "" {
			c.orders.last = from
		} else if c.orders.last == "" {
			c.orders.last = "0-0" // an empty log: later reads start after nothing
		}
		c.mu.Unlock()
		if len(entries) < orderPage {
			break
		}
	}
	b.forgetOrders()
	return nil
}

// forgetOrders lets go of the ids of orders older than twice the log's
// retention: the log no longer holds them.
func (b *Broker) forgetOrders() {
	c := &b.fleet
	oldest := time.Now().Add(-2 * orderRetention).UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, ms := range c.orders.done {
		if ms < oldest {
			delete(c.orders.done, id)
		}
	}
}
