package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// A channel's position (its meta hash) lives in Redis for the idle channel
// TTL after it was started or last published to. The nodes keep it alive
// for as long as they have subscribers on the channel: every
// idleTTL/keepAliveRounds each node extends the meta of every channel it is
// subscribed to, back to the idle TTL. So:
//   - a quiet channel with live subscribers keeps its epoch however long it
//     stays quiet: its next publication continues the subscribers' offsets
//     (without this, a channel quiet for an hour started a new epoch, and
//     every subscriber was disconnected with 3003 and told recovered:false);
//   - a read (a subscribe, a history call) does not extend a position: the
//     channels Redis holds that had no publication are those with live
//     subscribers somewhere, bounded by the connection limits, and those
//     started within the idle TTL, bounded by the start cap (starts.go).
//     A client that subscribes to names and leaves, again and again, cannot
//     keep them.
// A subscriber that leaves last gives its channel at least idleTTL·(1 -
// 1/keepAliveRounds) more before its position expires.

// keepAliveRounds is how many extensions a node makes per idle TTL.
const keepAliveRounds = 4

// keepAliveBatch bounds the commands of one pipeline.
const keepAliveBatch = 1000

// keepAliveScript extends a meta's TTL back to ARGV[1] ms if it has a
// shorter one; a meta without a TTL (history kept for ever) or with a
// longer one (a long history TTL) is left alone, and a missing one is not
// created.
var keepAliveScript = goredis.NewScript(`
local p = redis.call('PTTL', KEYS[1])
if p >= 0 and p < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 0
`)

// keepAliveLoop extends the positions of the channels this node is
// subscribed to until the broker closes.
func (b *Broker) keepAliveLoop() {
	defer b.keepAliveWG.Done()
	for b.sleep(b.idleTTL / keepAliveRounds) {
		if err := b.keepAlive(context.Background()); err != nil {
			b.log.Warn("redis: extending subscribed channels' positions failed; next try in a while",
				"err", err, "every", b.idleTTL/keepAliveRounds)
		}
	}
}

// keepAlive extends, once, the positions of the channels this node is
// subscribed to.
func (b *Broker) keepAlive(ctx context.Context) error {
	b.mu.Lock()
	chans := make([]string, 0, len(b.subs))
	for ch := range b.subs {
		chans = append(chans, ch)
	}
	b.mu.Unlock()
	if len(chans) == 0 {
		return nil
	}
	// Loaded once a round, on every master in a cluster, so that the
	// pipelined EVALSHAs find it.
	if err := keepAliveScript.Load(ctx, b.client).Err(); err != nil {
		return err
	}
	ttl := millis(b.idleTTL)
	for len(chans) > 0 {
		n := min(len(chans), keepAliveBatch)
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, ch := range chans[:n] {
				keepAliveScript.EvalSha(ctx, p, []string{b.metaKey(ch)}, ttl)
			}
			return nil
		})
		cancel()
		if err != nil {
			return err
		}
		chans = chans[n:]
	}
	return nil
}
