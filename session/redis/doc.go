// Package redis is a session.Broker backed by one Redis server, for running
// several WaterSpout nodes behind any load balancer. Redis assigns each
// channel's offsets, so they are dense and ordered across nodes; it keeps a
// bounded history per channel in a stream; and Redis pub/sub carries every
// publication to each node that has subscribers for its channel. The broker
// passes the same conformance suite (session/brokertest) as the memory
// broker. It needs Redis 6.2 or later (XTRIM MINID).
//
// # Key layout
//
// With the default prefix "ws", channel news uses
//
//	ws:{news}:meta       hash: epoch; gen, the data set generation it belongs to;
//	                     top, the last offset; ms, the time of the last
//	                     publication; ttl, the history TTL in ms
//	ws:{news}:history    stream of at most HistorySize entries with ids <ms>-<offset>
//	                     and fields k (idempotency key) and d (data)
//	ws:{news}:key:<key>  string: the publication first published with <key>
//	ws:pub:news          pub/sub channel: one publication per message
//	                     (in a cluster the shard channel ws:pub:{news})
//	ws:lineage           hash: id, the server identity that last used the data
//	                     set; gen, the data set generation; durable (1|0). In a
//	                     cluster there is one per slot, ws:{<tag>}:lineage,
//	                     with a tag chosen to fall in the slot.
//
// {news} is a Redis Cluster hash tag: one channel's keys share a slot, so the
// scripts stay legal in a cluster (channel names cannot contain braces). The
// broker connects to one server (URL), to the master that Sentinel names
// (SentinelAddrs, MasterName), or to a Cluster (ClusterAddrs). Values, stream entries and pub/sub messages carry a publication
// packed as <offset>:<epoch>:<time ms>:<key length>:<key><data>, the data
// being the publisher's JSON byte for byte.
//
// A publication expires from history HistoryTTL after its time: every
// publish and every history read trims the stream by id, and the whole stream
// expires HistoryTTL after the last publication, so nothing is left behind
// by an idle channel. A key is kept for max(KeyTTL, HistoryTTL). The meta hash
// is kept for max(HistoryTTL, KeyTTL, IdleChannelTTL) after the last
// publication (forever when history has no TTL), and reading the history
// extends it to at least IdleChannelTTL. So the position outlives the
// history, as in the memory broker: a client at the top still recovers, with
// nothing to replay, after the history expired; a client behind it is told
// recovered:false in the same epoch.
//
// # Atomicity
//
// Publish is one Lua script (scripts.go), and Redis runs a script to the end
// before any other command. Within it the idempotency key is checked first (a
// repeat returns the stored original and changes nothing), the offset is
// incremented, the history is appended and trimmed, the TTLs and the key are
// set, and the publication is PUBLISHed. Two nodes publishing to one channel
// therefore can neither share nor skip an offset; every publication in the
// history was sent to pub/sub and the other way round; and pub/sub order is
// offset order. A publication's time comes from the Redis clock (TIME), so
// every node agrees on it and on when history expires. History is one script
// too, so the position and the entries it returns are one snapshot.
//
// A Publish that fails may still have been applied: the script can run and
// its reply be lost. The client does not resend commands (go-redis's retries
// are turned off, so a publication is never applied twice); a publisher that
// retries should use the same idempotency key.
//
// # Epochs, evictions and restarts
//
// The epoch lives in the meta hash. When the hash is missing (a new channel;
// or it expired, was evicted, or Redis restarted without its data) the next
// publish or history read creates a new random epoch at offset 0 and deletes
// whatever history was left. A client resuming from a position in the old
// epoch is then sent subscribed with recovered:false and the new epoch and
// offset, never a silent gap. If only the history is evicted, the epoch
// stays and clients behind the lost entries get recovered:false as well.
//
// After a Redis restart without persistence, clients see this: while Redis
// is down, Ready fails, publishes and new subscriptions fail, and live
// delivery stops. Every node's pub/sub receiver reconnects on its own and
// reports a gap for each subscribed channel, so each session is closed with
// code 3003 (insufficient state) and its client reconnects with its cursor.
// Once Redis is back, each channel's first publish or read starts a new
// epoch: every client gets subscribed with recovered:false and the new
// position, then live messages. With a persistence that cannot lose an
// acknowledged write (AOF, appendfsync always) the epochs continue and the
// history is recovered as usual (see the next section).
//
// # Epochs and the data set
//
// An epoch is only worth something if no offset is ever acknowledged twice
// in it. Redis can bring back an older copy of a channel's keys, epoch
// included: a restart from an RDB snapshot taken before the last
// acknowledged publications, a restart from an AOF fsynced once a second,
// or a failover to a replica that had not received them (replication is
// asynchronous, and WAIT does not change that: a failover may still pick a
// replica that did not acknowledge). New publications would then be
// acknowledged at offsets clients already hold, and a client whose position
// the top has passed again would be told recovered:true over messages it
// never saw.
//
// So every channel's meta records the generation of the data set it was
// written in, and both scripts compare it with the current generation,
// atomically, before using the epoch; a channel from an older generation
// starts a new epoch, and its clients get recovered:false. The generation
// lives in the lineage hash together with the identity of the server that
// last used the data set: its master_replid, which a master takes anew on
// every start of redis-server and on every promotion (a replica shares its
// master's). The scripts read it with INFO replication. When a script meets a lineage
// written by another identity, the data set may have lost acknowledged
// writes, and a new generation starts, unless both
//
//   - the previous identity's writes were durable: a master with AOF and
//     appendfsync always (CONFIG GET appendfsync; where CONFIG is refused, as
//     on many managed services, durability is unknown and taken as absent),
//     and it never ran non-durably (durable is only ever lowered for one
//     identity); and
//   - the current server loaded its own files: a master with AOF and
//     appendfsync always that was not promoted since it started (INFO
//     replication master_replid2 is unset; a master restarted with
//     replicas attached may keep its old id there too, and is then taken
//     for promoted: a needless new epoch, never a missed one).
//
// Per persistence mode that gives: no persistence or RDB snapshots only: a
// new epoch after every restart, even a clean one (whether the last
// snapshot followed the last write cannot be told from the data); AOF with
// appendfsync everysec or no: a new epoch after every restart; AOF with
// appendfsync always: epochs continue across restarts, nothing is lost and
// nobody is told recovered:false; a Sentinel or manual failover, or a
// master that was demoted, resynced and promoted again: a new epoch on
// every channel (the new replication id shows it), whatever the
// persistence. A generation is a per-data-set property, not per channel:
// a channel nobody touched during an outage is checked when it is next
// used, against the lineage it meets then.
//
// The node learns the servers' identities and settings by inspecting them
// (INFO, CONFIG GET appendfsync) when it starts, on every Ready, and
// whenever a script reports an identity it does not know; a script that
// meets an unknown identity writes nothing and is run again after the
// inspection, so a verdict is only ever applied to the server it was made
// for. Restoring a backup by hand cannot be detected: delete the lineage
// hash afterwards (redis-cli DEL ws:lineage, or every ws:{*}:lineage in a
// cluster) so that every channel starts a new epoch.
//
// # Eviction
//
// Every key but the lineage hash has a TTL, so both allkeys-* and volatile-*
// maxmemory policies can evict them: an evicted meta or history costs
// recovered:false, an evicted idempotency key a second delivery of a retried
// publish. Ready fails, naming the policy, while a master has a maxmemory and
// a policy other than noeviction, unless Config.AllowEviction is set.
//
// # Pub/sub and gaps
//
// One pub/sub connection per Broker carries all its subscriptions. Subscribe
// sends SUBSCRIBE and then a PING with a unique payload on that connection,
// and returns when the PONG arrives: Redis answers a connection's commands in
// order, so the subscription is in place and a publication made after
// Subscribe returns is delivered. go-redis reconnects and resubscribes when
// the connection fails; publications in between are lost to pub/sub, so the
// broker calls HandleGap for every subscribed channel when it sees the
// failure, and again for each channel whose resubscription Redis confirms
// (covering sessions that joined meanwhile). A connection silent for 5 s is
// probed with a PING and replaced if no answer comes within 5 s more, which
// catches connections that a NAT or load balancer dropped without a word.
//
// After a failover in which the old master stays up (SENTINEL FAILOVER, a
// partition) the connection stays open and silent on it until Sentinel
// demotes it. An inspection that finds a new master while the connection is
// up and never reconnected replaces it with one to the new master
// (switchPubSub), and the gap is reported as above. In a Cluster there is
// one connection per master, handled as cluster.go describes.
//
// # Presence
//
// The broker is a session.Presencer and a session.Cluster (presence.go,
// which documents the keys): a hash of entries per channel, changed by
// scripts that also publish the join or leave on the channel's pub/sub
// channel; a heartbeat per node (Config.Heartbeat, default 2 s) in a sorted
// set, from which the live nodes purge a node silent for 3 heartbeats, so a
// SIGKILLed node's entries go within 4 heartbeats; and a control pub/sub
// channel every node listens on, on a connection of its own, backed by a
// log of the last 10 minutes' orders that every node reads at each
// heartbeat, so that a node cut off when an order was given carries it out
// once back (control.go). The heartbeat
// and the control receiver are two goroutines started by SetClusterHandler
// and stopped by Close. It is also a session.PresenceLeaser: a long-poll
// client's entry holds, after the node, the stamp of the poll that last
// refreshed it, and a lease's end removes the entry only while the stamp is
// unchanged, so a client whose polls move between nodes stays listed.
//
// # Concurrency
//
// All methods are safe for concurrent use. Publish and History use go-redis's
// connection pool and do not wait for each other. Subscribe and Unsubscribe
// hold a lock only while writing their command; a Subscribe waiting for Redis
// does not hold up others, and concurrent Subscribes of one channel share one
// SUBSCRIBE. One goroutine reads the pub/sub connection and makes every
// handler call, so HandlePublication and HandleGap are never concurrent, and
// one channel's publications arrive in offset order. The handler must return
// quickly (it holds up every channel) and must not call Subscribe, which
// waits for that goroutine and would fail after 5 s. In a Cluster one
// goroutine reads each shard's connection and another resubscribes the
// channels of a lost one; one channel's handler calls are made one at a
// time under a lock chosen by the channel (one of 64), so a channel's calls
// are still never concurrent and come in offset order, while channels on
// different shards are delivered in parallel. Close stops the goroutines and waits for them;
// calls made after Close fail.
package redis
