package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waterspout/waterspout/session"
)

// Presence, join/leave and the control channel (see doc.go, "Presence").
//
// Keys, with the default prefix "ws":
//
//	ws:{news}:presence        hash: client id → "<node> <user>"
//	ws:{news}:presence:notify string: the join/leave limit the channel's nodes use
//	ws:nodes                  sorted set: node id → its last heartbeat (Redis ms)
//	ws:node:<id>:chans        set: channels where node <id> has presence entries
//	ws:node:<id>:channels     hash: channel → node <id>'s subscribers (for Channels)
//	ws:control                pub/sub channel: Control orders, as JSON
//
// A join or leave travels on the channel's own pub/sub channel (ws:pub:news),
// so it reaches exactly the nodes subscribed to it, as "!" followed by JSON
// {"t":"join"|"leave","c":client,"u":user}; a packed publication always
// starts with a digit, so the two cannot be confused.

var (
	_ session.Presencer       = (*Broker)(nil)
	_ session.PresenceCounter = (*Broker)(nil)
	_ session.Cluster         = (*Broker)(nil)
)

// Heartbeat defaults: a node refreshes its heartbeat every DefaultHeartbeat,
// and is dead, its presence entries purged by any other node, once its last
// heartbeat is older than deadAfter heartbeats.
const (
	DefaultHeartbeat = 2 * time.Second
	deadAfter        = 3
)

// joinLeaveMark starts a join or leave on a channel's pub/sub channel.
const joinLeaveMark = '!'

// publishCommand is how the presence scripts publish a join or leave on a
// channel's pub/sub channel: it must be the command publications go out
// with (PUBLISH here; SPUBLISH if the nodes use sharded pub/sub), or joins
// and leaves miss the nodes.
func (b *Broker) publishCommand() string { return b.publish }

// fleet is the broker's presence and control state: this node among the others.
type fleet struct {
	node      string        // this node's id
	heartbeat time.Duration // Config.Heartbeat

	mu      sync.Mutex
	handler session.ClusterHandler
	// local holds this node's entries, to put them back if other nodes
	// took this one for dead (a long pause), and to know when the node's
	// last entry in a channel left.
	local    map[string]map[string]localEntry // channel → client → entry
	reported map[string]int                   // the channel counts last written
	started  bool
	beats    int // heartbeats written

	stop chan struct{}
	wg   sync.WaitGroup
}

type localEntry struct {
	user string
	opts session.PresenceOptions
}

func (b *Broker) presenceKey(ch string) string { return b.prefix + "{" + ch + "}:presence" }
func (b *Broker) notifyKey(ch string) string   { return b.prefix + "{" + ch + "}:presence:notify" }
func (b *Broker) nodesKey() string             { return b.prefix + "nodes" }
func (b *Broker) nodeChansKey(node string) string {
	return b.prefix + "node:" + node + ":chans"
}
func (b *Broker) nodeChannelsKey(node string) string {
	return b.prefix + "node:" + node + ":channels"
}
func (b *Broker) controlChannel() string { return b.prefix + "control" }

func (c *fleet) init(heartbeat time.Duration) {
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	c.node = newEpoch() + newEpoch()
	c.heartbeat = heartbeat
	c.local = make(map[string]map[string]localEntry)
	c.stop = make(chan struct{})
}

// NodeID returns the id this broker's node has in Redis.
func (b *Broker) NodeID() string { return b.fleet.node }

// startCluster starts the heartbeat and the control receiver once.
func (b *Broker) startCluster() {
	c := &b.fleet
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return
	}
	c.started = true
	ps := b.client.Subscribe(context.Background(), b.controlChannel())
	c.wg.Add(2)
	go b.heartbeatLoop()
	go b.controlLoop(ps)
}

// closeCluster stops the loops and takes this node out of Redis: its
// entries are removed by its sessions as they close; what is left (a
// session still open) goes with the node's records.
func (b *Broker) closeCluster() {
	c := &b.fleet
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	select {
	case <-c.stop:
		return
	default:
		close(c.stop)
	}
	c.wg.Wait()
	if !started {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = b.purgeNode(ctx, c.node) // best effort: otherwise the others purge it
}

// SetClusterHandler implements session.Cluster; it starts the node's
// heartbeat and its control receiver.
func (b *Broker) SetClusterHandler(h session.ClusterHandler) {
	b.fleet.mu.Lock()
	b.fleet.handler = h
	b.fleet.mu.Unlock()
	b.startCluster()
}

func (b *Broker) clusterHandler() session.ClusterHandler {
	b.fleet.mu.Lock()
	defer b.fleet.mu.Unlock()
	return b.fleet.handler
}

// Control implements session.Cluster: one PUBLISH that every node,
// this one included, receives and runs.
func (b *Broker) Control(ctx context.Context, c session.Control) error {
	msg, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("redis: control: %w", err)
	}
	if err := b.client.Publish(ctx, b.controlChannel(), msg).Err(); err != nil {
		return fmt.Errorf("redis: control: %w", err)
	}
	return nil
}

// controlLoop runs the orders of ws:control. go-redis reconnects and
// resubscribes by itself; an order sent while this node was cut off from
// Redis is lost for it (its sessions are then as cut off as it is).
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
		if h := b.clusterHandler(); h != nil {
			h.HandleControl(c)
		}
	}
}

// addPresenceScript adds an entry unless the channel is full, and publishes
// the join when the channel is within its join/leave limit.
//
//	KEYS[1] presence hash, KEYS[2] notify key
//	ARGV    client, "<node> <user>", max, notify, pub/sub channel, join payload,
//	        publish command (see publishCommand)
//
// Returns the number of entries, or -1 when the channel is full.
var addPresenceScript = goredis.NewScript(`
local n = redis.call('HLEN', KEYS[1])
local had = redis.call('HEXISTS', KEYS[1], ARGV[1])
if had == 0 and n >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[4])
if had == 0 then n = n + 1 end
if n <= tonumber(ARGV[4]) then redis.call(ARGV[7], ARGV[5], ARGV[6]) end
return n
`)

// removePresenceScript removes entries, every one when ARGV[3] is empty,
// else those of the node ARGV[3] (a dead node's purge), and publishes a
// leave for each while the channel is within its join/leave limit.
//
//	KEYS[1] presence hash, KEYS[2] notify key
//	ARGV    pub/sub channel, client ("" for all of a node's), node ("" for any),
//	        publish command
//
// Returns the number of entries removed.
var removePresenceScript = goredis.NewScript(`
local notify = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = redis.call('HLEN', KEYS[1])
local removed = 0
local function drop(client, v)
  local sp = string.find(v, ' ', 1, true)
  if not sp then sp = #v + 1 end
  if ARGV[3] ~= '' and string.sub(v, 1, sp - 1) ~= ARGV[3] then return end
  redis.call('HDEL', KEYS[1], client)
  if n <= notify then
    redis.call(ARGV[4], ARGV[1], '!' .. cjson.encode({t = 'leave', c = client, u = string.sub(v, sp + 1)}))
  end
  n = n - 1
  removed = removed + 1
end
if ARGV[2] ~= '' then
  local v = redis.call('HGET', KEYS[1], ARGV[2])
  if v then drop(ARGV[2], v) end
else
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do drop(all[i], all[i + 1]) end
end
if n <= 0 then redis.call('DEL', KEYS[2]) end
return removed
`)

// heartbeatScript records this node's heartbeat and lists the dead nodes.
//
//	KEYS[1] nodes sorted set
//	ARGV    node, dead after ms
//
// Returns {1 if the node was not in the set, dead node...}.
var heartbeatScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now, ARGV[1])
local out = {added}
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))) do
  out[#out + 1] = n
end
return out
`)

type joinLeaveJSON struct {
	T string `json:"t"`
	C string `json:"c"`
	U string `json:"u"`
}

// AddPresence implements session.Presencer.
func (b *Broker) AddPresence(ctx context.Context, ch string, info session.ClientInfo, opts session.PresenceOptions) (int, error) {
	c := &b.fleet
	join, _ := json.Marshal(joinLeaveJSON{"join", info.Client, info.User})
	n, err := addPresenceScript.Run(ctx, b.client, []string{b.presenceKey(ch), b.notifyKey(ch)},
		info.Client, c.node+" "+info.User, opts.Max, opts.Notify, b.pubChannel(ch), string(joinLeaveMark)+string(join),
		b.publishCommand()).Int()
	if err != nil {
		return 0, fmt.Errorf("redis: presence of %q: %w", ch, err)
	}
	if n < 0 {
		return opts.Max, session.ErrPresenceFull
	}
	c.mu.Lock()
	m := c.local[ch]
	first := m == nil
	if first {
		m = make(map[string]localEntry)
		c.local[ch] = m
	}
	m[info.Client] = localEntry{info.User, opts}
	c.mu.Unlock()
	if first {
		// The record that lets other nodes purge this channel if this node dies.
		if err := b.client.SAdd(ctx, b.nodeChansKey(c.node), ch).Err(); err != nil {
			return n, fmt.Errorf("redis: presence of %q: %w", ch, err)
		}
	}
	return n, nil
}

// RemovePresence implements session.Presencer.
func (b *Broker) RemovePresence(ctx context.Context, ch string, info session.ClientInfo, _ session.PresenceOptions) error {
	c := &b.fleet
	c.mu.Lock()
	last := false
	if m := c.local[ch]; m != nil {
		delete(m, info.Client)
		if len(m) == 0 {
			delete(c.local, ch)
			last = true
		}
	}
	c.mu.Unlock()
	err := removePresenceScript.Run(ctx, b.client, []string{b.presenceKey(ch), b.notifyKey(ch)},
		b.pubChannel(ch), info.Client, "", b.publishCommand()).Err()
	if err != nil {
		return fmt.Errorf("redis: presence of %q: %w", ch, err)
	}
	if last {
		// A join racing with this leaves the channel out of the record
		// until the next join here: its entries are then only purged by
		// the node's own Close, not by the others. The race needs the
		// last local client to leave while another subscribes.
		_ = b.client.SRem(ctx, b.nodeChansKey(c.node), ch).Err()
	}
	return nil
}

// Presence implements session.Presencer.
func (b *Broker) Presence(ctx context.Context, ch string) ([]session.ClientInfo, error) {
	all, err := b.client.HGetAll(ctx, b.presenceKey(ch)).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: presence of %q: %w", ch, err)
	}
	out := make([]session.ClientInfo, 0, len(all))
	for client, v := range all {
		_, user, _ := strings.Cut(v, " ")
		out = append(out, session.ClientInfo{Client: client, User: user})
	}
	return out, nil
}

// PresenceCount implements session.PresenceCounter: one HLEN.
func (b *Broker) PresenceCount(ctx context.Context, ch string) (int, error) {
	n, err := b.client.HLen(ctx, b.presenceKey(ch)).Result()
	if err != nil {
		return 0, fmt.Errorf("redis: presence of %q: %w", ch, err)
	}
	return int(n), nil
}

// PresenceStats implements session.Presencer. It reads the values only
// (HVALS), to count distinct users.
func (b *Broker) PresenceStats(ctx context.Context, ch string) (session.PresenceStats, error) {
	vals, err := b.client.HVals(ctx, b.presenceKey(ch)).Result()
	if err != nil {
		return session.PresenceStats{}, fmt.Errorf("redis: presence of %q: %w", ch, err)
	}
	users := make(map[string]struct{}, len(vals))
	for _, v := range vals {
		_, user, _ := strings.Cut(v, " ")
		users[user] = struct{}{}
	}
	return session.PresenceStats{Clients: len(vals), Users: len(users)}, nil
}

// Channels implements session.Cluster: this node's counts, live, plus the
// other live nodes' last reports (at most one heartbeat old).
func (b *Broker) Channels(ctx context.Context, prefix string) (map[string]int, error) {
	out := map[string]int{}
	if h := b.clusterHandler(); h != nil {
		out = h.LocalChannels(prefix)
	}
	nodes, err := b.client.ZRange(ctx, b.nodesKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: channels: %w", err)
	}
	pipe := b.client.Pipeline()
	var cmds []*goredis.MapStringStringCmd
	for _, n := range nodes {
		if n != b.fleet.node {
			cmds = append(cmds, pipe.HGetAll(ctx, b.nodeChannelsKey(n)))
		}
	}
	if len(cmds) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("redis: channels: %w", err)
		}
	}
	for _, cmd := range cmds {
		for ch, v := range cmd.Val() {
			var k int
			if _, err := fmt.Sscan(v, &k); err == nil && strings.HasPrefix(ch, prefix) {
				out[ch] += k
			}
		}
	}
	return out, nil
}

// heartbeatLoop refreshes this node's heartbeat and channel report, and
// purges the nodes whose heartbeat is too old.
func (b *Broker) heartbeatLoop() {
	c := &b.fleet
	defer c.wg.Done()
	t := time.NewTicker(c.heartbeat)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), c.heartbeat)
		if err := b.beat(ctx); err != nil {
			b.log.Warn("redis: node heartbeat failed", "err", err)
		}
		cancel()
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

// beat is one heartbeat.
func (b *Broker) beat(ctx context.Context) error {
	c := &b.fleet
	dead := c.heartbeat * deadAfter
	reply, err := heartbeatScript.Run(ctx, b.client, []string{b.nodesKey()}, c.node, dead.Milliseconds()).Slice()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.beats++
	resync := c.beats > 1 && len(reply) > 0 && reply[0] == int64(1)
	c.mu.Unlock()
	if resync {
		// Taken for dead (a pause longer than the bound) and purged: put
		// this node's entries back, with their joins.
		b.log.Warn("redis: this node was taken for dead; restoring its presence entries")
		b.restore(ctx)
	}
	for _, r := range reply[1:] {
		if n, ok := r.(string); ok && n != c.node {
			if err := b.purgeNode(ctx, n); err != nil {
				return err
			}
		}
	}
	return b.report(ctx)
}

// restore re-adds every local entry.
func (b *Broker) restore(ctx context.Context) {
	c := &b.fleet
	c.mu.Lock()
	all := make(map[string]map[string]localEntry, len(c.local))
	for ch, m := range c.local {
		all[ch] = maps.Clone(m)
	}
	c.local = make(map[string]map[string]localEntry)
	c.mu.Unlock()
	for ch, m := range all {
		for client, e := range m {
			if _, err := b.AddPresence(ctx, ch, session.ClientInfo{Client: client, User: e.user}, e.opts); err != nil {
				b.log.Warn("redis: restoring a presence entry failed", "channel", ch, "err", err)
			}
		}
	}
}

// purgeNode removes a node's presence entries (with their leaves) and its
// records. Several nodes may purge one at once: the script removes each
// entry once.
func (b *Broker) purgeNode(ctx context.Context, node string) error {
	chans, err := b.client.SMembers(ctx, b.nodeChansKey(node)).Result()
	if err != nil {
		return fmt.Errorf("purge node %s: %w", node, err)
	}
	removed := 0
	for _, ch := range chans {
		n, err := removePresenceScript.Run(ctx, b.client, []string{b.presenceKey(ch), b.notifyKey(ch)},
			b.pubChannel(ch), "", node, b.publishCommand()).Int()
		if err != nil {
			return fmt.Errorf("purge node %s: %w", node, err)
		}
		removed += n
	}
	// One key per command, not a transaction: in a Redis Cluster the three
	// keys live in different slots. Rerunning the purge is harmless.
	pipe := b.client.Pipeline()
	pipe.ZRem(ctx, b.nodesKey(), node)
	pipe.Del(ctx, b.nodeChansKey(node))
	pipe.Del(ctx, b.nodeChannelsKey(node))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("purge node %s: %w", node, err)
	}
	if node != b.fleet.node && len(chans) > 0 {
		b.log.Info("redis: purged the presence of a dead node", "node", node, "channels", len(chans), "entries", removed)
	}
	return nil
}

// report writes this node's subscriber counts when they changed, for the
// other nodes' Channels. The hash expires with the node's heartbeat.
func (b *Broker) report(ctx context.Context) error {
	h := b.clusterHandler()
	if h == nil {
		return nil
	}
	counts := h.LocalChannels("")
	c := &b.fleet
	key := b.nodeChannelsKey(c.node)
	ttl := c.heartbeat * deadAfter
	c.mu.Lock()
	same := maps.Equal(counts, c.reported)
	c.mu.Unlock()
	pipe := b.client.TxPipeline()
	if !same {
		pipe.Del(ctx, key)
		if len(counts) > 0 {
			args := make(map[string]any, len(counts))
			for ch, k := range counts {
				args[ch] = k
			}
			pipe.HSet(ctx, key, args)
		}
	}
	pipe.PExpire(ctx, key, ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("report channels: %w", err)
	}
	c.mu.Lock()
	c.reported = counts
	c.mu.Unlock()
	return nil
}

// deliverJoinLeave hands a join or leave read from ch's pub/sub channel to
// the handler; it reports false when payload is not one.
func (b *Broker) deliverJoinLeave(ch, payload string) bool {
	if len(payload) == 0 || payload[0] != joinLeaveMark {
		return false
	}
	var j joinLeaveJSON
	if err := json.Unmarshal([]byte(payload[1:]), &j); err != nil || (j.T != "join" && j.T != "leave") {
		b.log.Error("redis: undecodable join/leave", "channel", ch)
		return true
	}
	if h, ok := b.handle().(session.JoinLeaveHandler); ok {
		h.HandleJoinLeave(&session.JoinLeave{Type: j.T, Channel: ch, ClientInfo: session.ClientInfo{Client: j.C, User: j.U}})
	}
	return true
}
