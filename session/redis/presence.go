package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
//	ws:{news}:presence        hash: client id → "<node> <user>", or
//	                          "<node>~<stamp> <user>" for a long-poll
//	                          client's leased entry (session.PresenceLeaser)
//	ws:{news}:presence:notify string: the join/leave limit the channel's nodes use
//	ws:nodes                  sorted set: node id → its last heartbeat (Redis ms)
//	ws:node:<id>:chans        set: channels where node <id> has presence entries
//	ws:node:<id>:channels     hash: channel → node <id>'s subscribers (for Channels)
//	ws:control                pub/sub channel: Control orders, as JSON
//	ws:{orders}               stream: the same orders, kept orderRetention,
//	                          and ws:{orders}:epoch, its epoch (control.go)
//
// A join or leave travels on the channel's own pub/sub channel (ws:pub:news),
// so it reaches exactly the nodes subscribed to it, as "!" followed by JSON
// {"t":"join"|"leave","c":client,"u":user}; a packed publication always
// starts with a digit, so the two cannot be confused.

var (
	_ session.Presencer            = (*Broker)(nil)
	_ session.PresenceCounter      = (*Broker)(nil)
	_ session.PresenceBatchRemover = (*Broker)(nil)
	_ session.PresenceLeaser       = (*Broker)(nil)
	_ session.Cluster              = (*Broker)(nil)
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
	// last entry in a channel left. It is the source of truth: an entry
	// leaves it only once its removal from Redis succeeded; an entry whose
	// removal failed stays, marked leaving, and the heartbeat retries it.
	local    map[string]map[string]localEntry // channel → client → entry
	reported map[string]int                   // the channel counts last written
	orders   orders                           // the order log, as read (control.go)
	started  bool
	beats    int // heartbeats written

	// sweep is held (write) by the heartbeat's retry of failed removals
	// and (read) by AddPresence, so that a retried HDEL of a client cannot
	// land after the same client's new HSET.
	sweep sync.RWMutex
	// unswept and unrestored say whether local has leaving or lost entries,
	// so that a heartbeat without them does not walk local.
	unswept, unrestored bool

	stop chan struct{}
	wg   sync.WaitGroup
}

type localEntry struct {
	user string
	opts session.PresenceOptions
	// leaving: the session left but the removal from Redis failed; the
	// heartbeat retries it. lost: the node was purged as dead and putting
	// the entry back failed; the heartbeat retries it.
	leaving, lost bool
	// stamp is a leased entry's (session.PresenceLeaser): the poll that
	// last refreshed it from this node.
	stamp string
}

// entryValue is a presence hash value: "<node> <user>", with the stamp of
// a leased entry after the node ("<node>~<stamp> <user>"). Node ids and
// stamps are URL-safe base64: neither holds "~" or a space.
func entryValue(node, stamp, user string) string {
	if stamp != "" {
		return node + "~" + stamp + " " + user
	}
	return node + " " + user
}

// cleanupTimeout bounds the best-effort removal of an entry whose add
// failed half-way (its caller's context may be spent).
const cleanupTimeout = time.Second

func (b *Broker) presenceKey(ch string) string { return b.prefix + "{" + ch + "}:presence" }
func (b *Broker) notifyKey(ch string) string   { return b.prefix + "{" + ch + "}:presence:notify" }
func (b *Broker) nodesKey() string             { return b.prefix + "nodes" }
func (b *Broker) nodeChansKey(node string) string {
	return b.prefix + "node:" + node + ":chans"
}
func (b *Broker) nodeChannelsKey(node string) string {
	return b.prefix + "node:" + node + ":channels"
}

func (c *fleet) init(heartbeat time.Duration) {
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	c.node = session.NewEpoch() + session.NewEpoch()
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
	c.wg.Add(3)
	go b.heartbeatLoop()
	go b.controlLoop(ps)
	go b.ordersLoop()
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
// leave for each while the channel is within its join/leave limit. With a
// stamp (ARGV[5], a lease's end), it removes the entry only if its stamp
// is still that one: a poll on any node refreshed it otherwise.
//
//	KEYS[1] presence hash, KEYS[2] notify key
//	ARGV    pub/sub channel, client ("" for all of a node's), node ("" for any),
//	        publish command, stamp ("" for any)
//
// Returns the number of entries removed.
var removePresenceScript = goredis.NewScript(`
local notify = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = redis.call('HLEN', KEYS[1])
local removed = 0
local function drop(client, v)
  local sp = string.find(v, ' ', 1, true)
  if not sp then sp = #v + 1 end
  local node, stamp = string.sub(v, 1, sp - 1), ''
  local tl = string.find(node, '~', 1, true)
  if tl then node, stamp = string.sub(node, 1, tl - 1), string.sub(node, tl + 1) end
  if ARGV[3] ~= '' and node ~= ARGV[3] then return end
  if (ARGV[5] or '') ~= '' and stamp ~= ARGV[5] then return end
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

// refreshPresenceScript adds a leased entry or refreshes it (a new stamp,
// the node that serves the poll) with no join; it refuses an entry of
// another user.
//
//	KEYS[1] presence hash, KEYS[2] notify key
//	ARGV    client, entry value, max, notify, pub/sub channel, join payload,
//	        publish command, user
//
// Returns the number of entries, -1 when the channel is full, -2 when the
// entry is another user's.
var refreshPresenceScript = goredis.NewScript(`
local n = redis.call('HLEN', KEYS[1])
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local sp = string.find(v, ' ', 1, true)
  local u = ''
  if sp then u = string.sub(v, sp + 1) end
  if u ~= ARGV[8] then return -2 end
elseif n >= tonumber(ARGV[3]) then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[4])
if not v then
  n = n + 1
  if n <= tonumber(ARGV[4]) then redis.call(ARGV[7], ARGV[5], ARGV[6]) end
end
return n
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

// AddPresence implements session.Presencer. The node's channel record
// (SADD) goes first, so that other nodes can purge whatever the script
// leaves if this node dies. If the script fails, the entry may still have
// been written (the reply was lost): it is removed again, or left to the
// heartbeat's retry, and never kept as present.
func (b *Broker) AddPresence(ctx context.Context, ch string, info session.ClientInfo, opts session.PresenceOptions) (int, error) {
	return b.add(ctx, ch, info, "", opts)
}

// RefreshPresence implements session.PresenceLeaser: AddPresence with the
// refresh script, the entry recording this node and stamp. The entry may
// have been another node's (the client's previous poll went there): that
// node's lease then finds the stamp changed and leaves the entry.
func (b *Broker) RefreshPresence(ctx context.Context, ch string, info session.ClientInfo, stamp string, opts session.PresenceOptions) (int, error) {
	return b.add(ctx, ch, info, stamp, opts)
}

// add is AddPresence, or RefreshPresence when stamp is set.
func (b *Broker) add(ctx context.Context, ch string, info session.ClientInfo, stamp string, opts session.PresenceOptions) (int, error) {
	c := &b.fleet
	c.sweep.RLock()
	defer c.sweep.RUnlock()
	c.mu.Lock()
	known := c.local[ch] != nil
	c.mu.Unlock()
	if !known {
		if err := b.client.SAdd(ctx, b.nodeChansKey(c.node), ch).Err(); err != nil {
			return 0, fmt.Errorf("redis: presence of %q: %w", ch, err)
		}
	}
	n, err := b.addScript(ctx, b.client, ch, info, stamp, opts).Int()
	if err != nil {
		err = fmt.Errorf("redis: presence of %q: %w", ch, err)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if rerr := b.removeScript(cctx, b.client, ch, info.Client, stamp).Err(); rerr != nil {
			b.markLeaving(ch, info, stamp, opts)
			return 0, err
		}
		b.dropLocal(cctx, ch, info.Client, stamp)
		return 0, err
	}
	if n == -2 {
		return 0, session.ErrPresenceTaken
	}
	if n < 0 {
		return opts.Max, session.ErrPresenceFull
	}
	c.mu.Lock()
	m := c.local[ch]
	if m == nil {
		m = make(map[string]localEntry)
		c.local[ch] = m
	}
	m[info.Client] = localEntry{user: info.User, opts: opts, stamp: stamp}
	c.mu.Unlock()
	return n, nil
}

func (b *Broker) addScript(ctx context.Context, s goredis.Scripter, ch string, info session.ClientInfo, stamp string, opts session.PresenceOptions) *goredis.Cmd {
	join, _ := json.Marshal(joinLeaveJSON{"join", info.Client, info.User})
	script, args := addPresenceScript, []any{info.Client, entryValue(b.fleet.node, stamp, info.User), opts.Max, opts.Notify,
		b.pubChannel(ch), string(joinLeaveMark) + string(join), b.publishCommand()}
	if stamp != "" {
		script, args = refreshPresenceScript, append(args, info.User)
	}
	return script.Run(ctx, s, []string{b.presenceKey(ch), b.notifyKey(ch)}, args...)
}

// removeScript removes client's entry; with a stamp, only if the entry
// still has it.
func (b *Broker) removeScript(ctx context.Context, s goredis.Scripter, ch, client, stamp string) *goredis.Cmd {
	return removePresenceScript.Run(ctx, s, []string{b.presenceKey(ch), b.notifyKey(ch)},
		b.pubChannel(ch), client, "", b.publishCommand(), stamp)
}

// ExpirePresence implements session.PresenceLeaser: the entry goes only if
// its stamp is still stamp. Either way this node's record of it goes, unless
// a later poll here refreshed it: the entry is no longer this node's to
// remove. A failed removal is retried by the heartbeat, with the stamp.
func (b *Broker) ExpirePresence(ctx context.Context, ch string, info session.ClientInfo, stamp string, opts session.PresenceOptions) error {
	if err := b.removeScript(ctx, b.client, ch, info.Client, stamp).Err(); err != nil {
		b.markLeaving(ch, info, stamp, opts)
		return fmt.Errorf("redis: presence of %q (retried at the next heartbeat): %w", ch, err)
	}
	b.dropLocal(ctx, ch, info.Client, stamp)
	return nil
}

// markLeaving keeps (or puts) a client's entry in local as leaving, for
// the heartbeat to remove from Redis. With a stamp (a lease's end), only
// if no later poll here refreshed it.
func (b *Broker) markLeaving(ch string, info session.ClientInfo, stamp string, opts session.PresenceOptions) {
	c := &b.fleet
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.local[ch]
	if m == nil {
		m = make(map[string]localEntry)
		c.local[ch] = m
	}
	e, ok := m[info.Client]
	if stamp != "" && ok && e.stamp != stamp {
		return // refreshed since: the entry stays
	}
	if !ok {
		e = localEntry{user: info.User, opts: opts, stamp: stamp}
	}
	e.leaving, e.lost = true, false
	m[info.Client] = e
	c.unswept = true
}

// dropLocal forgets a client's entry once Redis no longer has it; the
// channel leaves the node's record with its last entry. A join racing
// with this leaves the channel out of the record until the next join
// here: its entries are then only purged by the node's own Close, not by
// the others. The race needs the last local client to leave while another
// subscribes.
//
// With a stamp (a lease's end), the record goes only if no later poll here
// refreshed it; without, it goes whatever it is.
func (b *Broker) dropLocal(ctx context.Context, ch, client, stamp string) {
	c := &b.fleet
	c.mu.Lock()
	last := false
	if m := c.local[ch]; m != nil {
		if e, ok := m[client]; stamp != "" && ok && e.stamp != stamp {
			c.mu.Unlock()
			return
		}
		delete(m, client)
		if len(m) == 0 {
			delete(c.local, ch)
			last = true
		}
	}
	c.mu.Unlock()
	if last {
		_ = b.client.SRem(ctx, b.nodeChansKey(c.node), ch).Err()
	}
}

// RemovePresence implements session.Presencer. The local entry goes only
// once Redis removed it; if Redis fails, it stays marked leaving and the
// heartbeat retries the removal, so the entry cannot stay behind as a
// ghost (a join never followed by a leave).
func (b *Broker) RemovePresence(ctx context.Context, ch string, info session.ClientInfo, opts session.PresenceOptions) error {
	if err := b.removeScript(ctx, b.client, ch, info.Client, "").Err(); err != nil {
		b.markLeaving(ch, info, "", opts)
		return fmt.Errorf("redis: presence of %q (retried at the next heartbeat): %w", ch, err)
	}
	b.dropLocal(ctx, ch, info.Client, "")
	return nil
}

// RemovePresences implements session.PresenceBatchRemover: a closing
// session's entries in one pipeline, one round trip whatever their number.
func (b *Broker) RemovePresences(ctx context.Context, info session.ClientInfo, chans []string, opts func(ch string) session.PresenceOptions) error {
	if len(chans) == 0 {
		return nil
	}
	pipe := b.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(chans))
	for i, ch := range chans {
		cmds[i] = b.removeEval(ctx, pipe, ch, info.Client, "")
	}
	_, _ = pipe.Exec(ctx)
	var failed error
	for i, ch := range chans {
		if err := cmds[i].Err(); err != nil {
			b.markLeaving(ch, info, "", opts(ch))
			failed = fmt.Errorf("redis: presence of %q (retried at the next heartbeat): %w", ch, err)
			continue
		}
		b.dropLocal(ctx, ch, info.Client, "")
	}
	return failed
}

// removeEval is removeScript for a pipeline, where EVALSHA's fallback to
// EVAL cannot run: it sends the script.
func (b *Broker) removeEval(ctx context.Context, pipe goredis.Pipeliner, ch, client, stamp string) *goredis.Cmd {
	return removePresenceScript.Eval(ctx, pipe, []string{b.presenceKey(ch), b.notifyKey(ch)},
		b.pubChannel(ch), client, "", b.publishCommand(), stamp)
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

// NodeBeat is one node sharing the broker's Redis, by its heartbeat.
type NodeBeat struct {
	ID string `json:"id"`
	// Heartbeat is when the node last wrote its heartbeat, by Redis's
	// clock. Nodes silent for 3 heartbeats are purged by the others.
	Heartbeat time.Time `json:"heartbeat"`
	// Self marks the node this broker belongs to.
	Self bool `json:"self"`
}

// Nodes lists the nodes whose heartbeat is in Redis, newest first: one
// ZRANGE of the set every heartbeat writes, so at most 3 heartbeats stale
// (a node silent longer is purged at the next live node's beat).
func (b *Broker) Nodes(ctx context.Context) ([]NodeBeat, error) {
	zs, err := b.client.ZRevRangeWithScores(ctx, b.nodesKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: nodes: %w", err)
	}
	out := make([]NodeBeat, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		out = append(out, NodeBeat{ID: id, Heartbeat: time.UnixMilli(int64(z.Score)), Self: id == b.fleet.node})
	}
	return out, nil
}

// heartbeatLoop refreshes this node's heartbeat and channel report, and
// purges the nodes whose heartbeat is too old.
func (b *Broker) heartbeatLoop() {
	b.everyBeat("redis: node heartbeat failed", b.beat)
}

// everyBeat runs fn at once and then every heartbeat, each run bounded by
// one heartbeat, until the broker closes; a failure is logged with msg. It
// is one of the fleet's goroutines (fleet.wg).
func (b *Broker) everyBeat(msg string, fn func(context.Context) error) {
	c := &b.fleet
	defer c.wg.Done()
	t := time.NewTicker(c.heartbeat)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), c.heartbeat)
		if err := fn(ctx); err != nil {
			b.log.Warn(msg, "err", err)
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
	if resync {
		c.reported = nil // purged with the node: report in full
	}
	c.mu.Unlock()
	if resync {
		// Taken for dead (a pause longer than the bound) and purged: put
		// this node's entries back, with their joins.
		b.log.Warn("redis: this node was taken for dead; restoring its presence entries")
	}
	b.restore(resync)
	b.retryRemovals()
	for _, r := range reply[1:] {
		if n, ok := r.(string); ok && n != c.node {
			if err := b.purgeNode(ctx, n); err != nil {
				return err
			}
		}
	}
	return b.report(ctx)
}

// restoreSnapshotted, when set (by tests), runs between restore's snapshot
// of the entries and its writes.
var restoreSnapshotted func()

// restoreTimeout bounds one restore or retry pass, outside the
// heartbeat's own deadline.
func (c *fleet) passTimeout() time.Duration { return c.heartbeat * deadAfter }

// restore re-adds the local entries after this node was purged as dead
// (all of them, with all=true), or those a previous restore failed to put
// back. local is never cleared: entries stay there, marked lost, until
// Redis has them again. All channels go in one pipeline: SADD of the
// node's record, then one script per entry.
func (b *Broker) restore(all bool) {
	c := &b.fleet
	type item struct {
		ch     string
		client string
		e      localEntry
	}
	var items []item
	chans := map[string]bool{}
	c.mu.Lock()
	if !all && !c.unrestored {
		c.mu.Unlock()
		return
	}
	c.unrestored = false
	for ch, m := range c.local {
		for client, e := range m {
			if e.leaving {
				if all { // the purge removed it from Redis already
					delete(m, client)
				}
				continue
			}
			if all || e.lost {
				e.lost = true
				m[client] = e
				items = append(items, item{ch, client, e})
				chans[ch] = true
			}
		}
		if len(m) == 0 {
			delete(c.local, ch)
		}
	}
	c.mu.Unlock()
	if len(items) == 0 {
		return
	}
	if restoreSnapshotted != nil {
		restoreSnapshotted()
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.passTimeout())
	defer cancel()
	pipe := b.client.Pipeline()
	for ch := range chans {
		pipe.SAdd(ctx, b.nodeChansKey(c.node), ch)
	}
	cmds := make([]*goredis.Cmd, len(items))
	for i, it := range items {
		join, _ := json.Marshal(joinLeaveJSON{"join", it.client, it.e.user})
		cmds[i] = addPresenceScript.Eval(ctx, pipe, []string{b.presenceKey(it.ch), b.notifyKey(it.ch)},
			it.client, entryValue(c.node, it.e.stamp, it.e.user), it.e.opts.Max, it.e.opts.Notify, b.pubChannel(it.ch),
			string(joinLeaveMark)+string(join), b.publishCommand())
	}
	_, _ = pipe.Exec(ctx)
	failed := 0
	c.mu.Lock()
	for i, it := range items {
		err := cmds[i].Err()
		cur, ok := c.local[it.ch][it.client]
		switch {
		case ok && cur.lost && err == nil:
			cur.lost = false
			c.local[it.ch][it.client] = cur
		case ok && cur.lost:
			failed++ // stays lost: the next heartbeat tries again
			c.unrestored = true
		case !ok:
			// Removed while this pass ran, perhaps before the re-add
			// reached Redis (which may have run it even if its reply was
			// lost): remove it again rather than leave a ghost.
			m := c.local[it.ch]
			if m == nil {
				m = make(map[string]localEntry)
				c.local[it.ch] = m
			}
			m[it.client] = localEntry{user: it.e.user, opts: it.e.opts, leaving: true, stamp: it.e.stamp}
			c.unswept = true
		}
	}
	c.mu.Unlock()
	if failed > 0 {
		b.log.Warn("redis: restoring presence entries failed; retrying at the next heartbeat", "entries", failed, "err", ctx.Err())
	}
}

// retryRemovals removes from Redis the entries whose removal failed, in
// one pipeline, and forgets those it removed.
func (b *Broker) retryRemovals() {
	c := &b.fleet
	c.sweep.Lock()
	defer c.sweep.Unlock()
	type item struct{ ch, client, stamp string }
	var items []item
	c.mu.Lock()
	if !c.unswept {
		c.mu.Unlock()
		return
	}
	c.unswept = false
	for ch, m := range c.local {
		for client, e := range m {
			if e.leaving {
				items = append(items, item{ch, client, e.stamp})
			}
		}
	}
	c.mu.Unlock()
	if len(items) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.passTimeout())
	defer cancel()
	pipe := b.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(items))
	for i, it := range items {
		cmds[i] = b.removeEval(ctx, pipe, it.ch, it.client, it.stamp)
	}
	_, _ = pipe.Exec(ctx)
	failed := 0
	for i, it := range items {
		if cmds[i].Err() != nil {
			failed++
			c.mu.Lock()
			c.unswept = true
			c.mu.Unlock()
			continue
		}
		c.mu.Lock()
		still := c.local[it.ch][it.client].leaving
		c.mu.Unlock()
		if still {
			b.dropLocal(ctx, it.ch, it.client, it.stamp)
		}
	}
	if failed > 0 {
		b.log.Warn("redis: removing presence entries failed; retrying at the next heartbeat", "entries", failed)
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
			b.pubChannel(ch), "", node, b.publishCommand(), "").Int()
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

// report writes this node's subscriber counts, for the other nodes'
// Channels: only the changes since the last report (HSET of the counts
// that changed, HDEL of the channels gone), nothing but the expiry when
// none changed. The hash expires with the node's heartbeat; if it is gone
// (the node was purged, or paused past the expiry) the next report writes
// it whole.
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
	reported := c.reported
	c.mu.Unlock()
	set := make(map[string]any)
	for ch, k := range counts {
		if old, ok := reported[ch]; !ok || old != k {
			set[ch] = k
		}
	}
	var gone []string
	for ch := range reported {
		if _, ok := counts[ch]; !ok {
			gone = append(gone, ch)
		}
	}
	pipe := b.client.TxPipeline()
	if reported == nil {
		pipe.Del(ctx, key)
	}
	if len(gone) > 0 {
		pipe.HDel(ctx, key, gone...)
	}
	if len(set) > 0 {
		pipe.HSet(ctx, key, set)
	}
	exp := pipe.PExpire(ctx, key, ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("report channels: %w", err)
	}
	c.mu.Lock()
	c.reported = counts
	if !exp.Val() && len(counts) > 0 {
		c.reported = nil // the hash is gone: write it whole next time
	}
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
