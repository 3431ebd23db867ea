package redis

import goredis "github.com/redis/go-redis/v9"

// Both scripts run atomically in Redis: no other command on the channel's
// keys runs between their reads and writes, and nothing they write is seen
// half-done. The channel's keys share the hash tag {channel}, so a script
// only touches one cluster slot.
//
// A packed publication, the one wire format between the scripts and Go (the
// pub/sub payload, the idempotency key's value and each history entry
// returned), is
//
//	<offset>:<epoch>:<time ms>:<key length>:<key><data>
//
// The data is the publisher's JSON, byte for byte; it is never parsed.

// generationLua is the prelude of both scripts: it finds the generation of
// the data set the script runs in (see "Epochs and the data set" in doc.go).
//
// The server's identity is its master_replid: a master takes a new one on
// every start (a restart that keeps its old one for partial resyncs moves it
// to master_replid2) and on every promotion, and a replica shares its
// master's. One INFO section is all a script reads (INFO server for the
// run_id as well cost about 5 µs more per publish). known lists,
// space-separated, the identities the node inspected, each followed by ":" and two flags: T, the
// server may continue the data set it loaded (a master with AOF and
// appendfsync always, never promoted since it started), and D, its own
// writes are durable (a master with AOF and appendfsync always). A server
// missing from known returns nil and the identity, having written nothing:
// the node inspects it and runs the script again.
//
// The lineage hash (fields id, gen, durable) names the identity that last
// used the data set and the data set's generation. When another identity
// meets it, the generation is kept only if the previous identity's writes
// were durable and this server may continue them; otherwise every channel
// in the data set starts a new epoch, since acknowledged writes may be
// missing (a restore from a snapshot, a replica promoted before it had
// every write, a non-durable AOF).
const generationLua = `
local function generation(lin, known, fresh)
  local id = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or '?' 
  local at = string.find(known, id .. ':', 1, true)
  if not at then return nil, id end
  local trust = string.sub(known, at + #id + 1, at + #id + 1)
  local durable = string.sub(known, at + #id + 2, at + #id + 2)
  local l = redis.call('HMGET', lin, 'id', 'gen', 'durable')
  if l[1] == id and l[2] then
    -- Durability is only ever lowered for one identity: writes made while
    -- it was not durable may be lost at its next restart.
    if l[3] == '1' and durable == '0' then redis.call('HSET', lin, 'durable', '0') end
    return l[2]
  end
  local gen = fresh
  if l[2] and l[3] == '1' and trust == '1' then gen = l[2] end
  redis.call('HSET', lin, 'id', id, 'gen', gen, 'durable', durable)
  return gen
end
`

// publishScript assigns the next offset, appends to the history, remembers
// the idempotency key and publishes, or returns the original publication when
// the key was seen.
//
//	KEYS[1] meta hash: epoch, gen (data set generation), top (last offset),
//	        ms (last stream id time), ttl (history TTL ms)
//	KEYS[2] history stream: entry id <ms>-<offset>, fields k (key) and d (data)
//	KEYS[3] lineage hash (see generationLua)
//	KEYS[4] idempotency key, only when the publication has a key
//	ARGV    pub/sub channel, data, key, history size, history TTL ms,
//	        key TTL ms, meta TTL ms (0: no expiry), a fresh epoch,
//	        known identities, a fresh generation, publish command, may
//	        start (1|0: whether a channel Redis holds no position for may
//	        start, see starts.go)
//
// Returns {duplicate 0|1, packed publication, started 0|1}, or {-1,
// identity} when the server is not among the known identities, or the
// error WSNOSTART when the channel would start and may not (nothing was
// written either way).
var publishScript = goredis.NewScript(generationLua + `
local meta, hist, lin, keyk = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local gen, id = generation(lin, ARGV[9], ARGV[10])
if not gen then return {-1, id} end
local epoch, mgen, last = unpack(redis.call('HMGET', meta, 'epoch', 'gen', 'ms'))
-- A meta from an earlier generation is restarted in place: it adds no key,
-- so it is not a start (see starts.go) and the start cap does not refuse it.
local held = epoch
if epoch and mgen ~= gen then
  -- The channel was written in an earlier generation of the data set, which
  -- may have lost acknowledged publications: its key, too, may be stale.
  epoch = nil
end
if keyk and epoch then
  local orig = redis.call('GET', keyk)
  if orig then return {1, orig, 0} end
end
local pubch, data, key = ARGV[1], ARGV[2], ARGV[3]
local started = 0
local size, httl, kttl, mttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if epoch then
  last = tonumber(last or '0')
else
  -- No meta: a new channel, or its meta expired or was evicted, or it is
  -- from an earlier generation. Continuity is lost either way, so a new
  -- epoch starts at offset 1, and history left from the old epoch must not
  -- mix with the new one.
  if not held then
    if ARGV[12] ~= '1' then return redis.error_reply('WSNOSTART') end
    started = 1
  end
  epoch = ARGV[8]
  last = 0
  redis.call('DEL', hist)
  redis.call('HSET', meta, 'epoch', epoch, 'gen', gen, 'top', 0)
end
local top = redis.call('HINCRBY', meta, 'top', 1)
-- Stream ids must grow even if the server clock steps back.
local ms = math.max(now, last)

if size > 0 then
  redis.call('XADD', hist, 'MAXLEN', '=', size, string.format('%d-%d', ms, top), 'k', key, 'd', data)
  if httl > 0 then
    redis.call('XTRIM', hist, 'MINID', now - httl)
    redis.call('PEXPIRE', hist, httl)
  else
    redis.call('PERSIST', hist)
  end
else
  redis.call('DEL', hist)
end
redis.call('HSET', meta, 'ms', ms, 'ttl', httl)
if mttl > 0 then
  redis.call('PEXPIRE', meta, mttl)
else
  redis.call('PERSIST', meta)
end

local p = string.format('%d:%s:%d:%d:', top, epoch, ms, #key) .. key .. data
if keyk and kttl > 0 then
  redis.call('SET', keyk, p, 'PX', kttl)
end
redis.call(ARGV[11], pubch, p)
return {0, p, started}
`)

// historyScript returns the channel's position and the retained
// publications after a position, creating the position (a fresh epoch at
// offset 0) when the channel has none, as the memory broker does.
//
//	KEYS[1] meta hash, KEYS[2] history stream, KEYS[3] lineage hash (as in
//	        publishScript)
//	ARGV    a fresh epoch, idle channel TTL ms, has since (1|0),
//	        since epoch, since offset, limit (<0: all), known identities,
//	        a fresh generation, may start (1|0, as in publishScript)
//
// Returns {epoch, top, recoverable 0|1, started 0|1, packed
// publication...}, or {"", identity} when the server is not among the known
// identities, or the error WSNOSTART when the channel would start and may
// not (nothing was written either way).
var historyScript = goredis.NewScript(generationLua + `
local meta, hist, lin = KEYS[1], KEYS[2], KEYS[3]
local gen, id = generation(lin, ARGV[7], ARGV[8])
if not gen then return {'', id} end
local idle = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local epoch, mgen = unpack(redis.call('HMGET', meta, 'epoch', 'gen'))
local held = epoch -- restarted in place below when of an earlier generation: not a start
if epoch and mgen ~= gen then epoch = nil end
local top, started = 0, 0
if epoch then
  top = tonumber(redis.call('HGET', meta, 'top') or '0')
  local ttl = tonumber(redis.call('HGET', meta, 'ttl') or '0')
  if ttl > 0 then
    redis.call('XTRIM', hist, 'MINID', now - ttl)
  end
  -- A read does not extend the position: the nodes holding subscribers
  -- do (keepalive.go), so that what reads alone keep is bounded.
else
  if not held then
    if ARGV[9] ~= '1' then return redis.error_reply('WSNOSTART') end
    started = 1
  end
  epoch = ARGV[1]
  redis.call('DEL', hist)
  redis.call('DEL', meta)
  redis.call('HSET', meta, 'epoch', epoch, 'gen', gen, 'top', 0)
  redis.call('PEXPIRE', meta, idle)
end

-- The stream holds offsets first..top without holes: Publish appends each
-- offset and trimming only removes the oldest.
local first = top - redis.call('XLEN', hist) + 1
local after = first - 1
local rec = 0
if ARGV[3] == '1' then
  local since = tonumber(ARGV[5])
  if ARGV[4] ~= epoch or since > top or since < first - 1 then
    return {epoch, top, 0, started}
  end
  rec = 1
  after = since
end
local count = top - after
local limit = tonumber(ARGV[6])
if limit >= 0 and count > limit then count = limit end

local out = {epoch, top, rec, started}
if count <= 0 then return out end
local function add(e)
  local ms, off = string.match(e[1], '^(%d+)-(%d+)$')
  local f = e[2]
  local key, data = f[2], f[4]
  out[#out + 1] = string.format('%s:%s:%s:%d:', off, epoch, ms, #key) .. key .. data
end
if count == top - after then
  -- Everything up to the top: the newest count entries.
  local es = redis.call('XREVRANGE', hist, '+', '-', 'COUNT', count)
  for i = #es, 1, -1 do add(es[i]) end
else
  -- A limit stops short of the top: read from the oldest and skip.
  local es = redis.call('XRANGE', hist, '-', '+', 'COUNT', after - first + 1 + count)
  for i = #es - count + 1, #es do add(es[i]) end
end
return out
`)
