package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// serverInfo is what the broker learned about one Redis master by
// inspecting it: who it is, whether it may continue the data set it holds,
// whether its writes are durable, and whether it may evict keys.
type serverInfo struct {
	id       string // master_replid, as the scripts read it
	addr     string // for messages
	trust    bool   // durable, and not promoted since it started: its data is its own
	durable  bool   // a master with AOF and appendfsync always
	policy   string // maxmemory-policy
	maxmem   int64  // maxmemory in bytes, 0 for no limit
	fsync    string // appendfsync, "" when CONFIG GET was refused
	aof      bool
	promoted bool   // master_replid2 is set: promoted from replica since it started
	role     string // master or slave
}

// evicts reports whether the server may evict WaterSpout's keys: every key
// but the lineage hash has a TTL, so any policy but noeviction can evict
// them once maxmemory is reached.
func (s serverInfo) evicts() bool {
	return s.maxmem > 0 && s.policy != "noeviction"
}

// knownEntry is the server's entry in the scripts' list of known identities.
func (s serverInfo) knownEntry() string {
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	return s.id + ":" + flag(s.trust) + flag(s.durable)
}

// inspectAll inspects every master (one, unless the client is a cluster)
// and replaces what the broker knows. It returns the new list.
func (b *Broker) inspectAll(ctx context.Context) ([]serverInfo, error) {
	b.inspectMu.Lock()
	defer b.inspectMu.Unlock()
	var infos []serverInfo
	var err error
	if cc, ok := b.client.(*goredis.ClusterClient); ok {
		// A master that cannot be inspected (down, failing over) only
		// concerns the channels of its slots: their scripts fail until it
		// is back. The node stays ready while any master answers.
		var mu sync.Mutex
		var errs []error
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			info, err := inspect(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", c.Options().Addr, err))
				return nil
			}
			info.addr = c.Options().Addr
			infos = append(infos, info)
			return nil
		})
		if err == nil && len(infos) == 0 {
			err = errors.Join(errs...)
		} else if len(errs) > 0 {
			b.log.Debug("redis cluster: some masters not inspected", "err", errors.Join(errs...))
		}
	} else {
		var info serverInfo
		info, err = inspect(ctx, b.client)
		infos = append(infos, info)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: inspect server: %w", err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].id < infos[j].id })
	entries := make([]string, len(infos))
	for i, s := range infos {
		entries[i] = s.knownEntry()
	}
	known := strings.Join(entries, " ")
	if old := b.known.Load(); old == nil || *old != known {
		for _, s := range infos {
			b.log.Info("redis server inspected", "id", s.id, "continues_data", s.trust,
				"durable", s.durable, "maxmemory_policy", s.policy, "maxmemory", s.maxmem)
		}
	}
	b.servers.Store(&infos)
	b.known.Store(&known)
	if !b.cluster {
		// A new master while the pub/sub connection is up and never
		// reconnected: it is still on the old one (a restart would have
		// broken it; a reconnect dials the current master).
		connects := b.psConnects.Load()
		moved := b.lastID != "" && b.lastID != infos[0].id && connects == b.lastConnects && !b.psDown.Load()
		b.lastID, b.lastConnects = infos[0].id, connects
		if moved {
			b.switchPubSub()
		}
	}
	return infos, nil
}

// knownIDs returns the scripts' list of known identities, inspecting the
// servers first if none is known yet.
func (b *Broker) knownIDs(ctx context.Context) (string, error) {
	if k := b.known.Load(); k != nil {
		return *k, nil
	}
	if _, err := b.inspectAll(ctx); err != nil {
		return "", err
	}
	return *b.known.Load(), nil
}

// inspect reads one server's INFO and its appendfsync setting. The INFO
// before and after CONFIG GET must name the same server, so that a restart
// or failover in between cannot pair one server's identity with another's
// settings. Each INFO asks only for the sections parseInfo reads, since
// Ready inspects on every probe: the second only for the identity.
func inspect(ctx context.Context, c goredis.Cmdable) (serverInfo, error) {
	for attempt := 0; attempt < 3; attempt++ {
		first, err := c.Info(ctx, "replication", "persistence", "memory").Result()
		if isRedisError(err) {
			// Before Redis 7 an INFO names at most one section.
			first, err = c.Info(ctx).Result()
		}
		if err != nil {
			return serverInfo{}, err
		}
		info := parseInfo(first)
		// Managed services often refuse CONFIG: durability is then unknown
		// and treated as absent.
		if kv, err := c.ConfigGet(ctx, "appendfsync").Result(); err == nil {
			info.fsync = kv["appendfsync"]
		} else if !isRedisError(err) {
			return serverInfo{}, err
		}
		again, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return serverInfo{}, err
		}
		if parseInfo(again).id != info.id {
			continue
		}
		info.durable = info.role == "master" && info.aof && info.fsync == "always"
		info.trust = info.durable && !info.promoted
		return info, nil
	}
	return serverInfo{}, errors.New("the server changed identity three times while being inspected")
}

// parseInfo reads the fields the broker needs from an INFO reply.
func parseInfo(s string) (info serverInfo) {
	var replID string
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "master_replid":
			// As the scripts read it: the word characters after the colon.
			replID = v[:len(v)-len(strings.TrimLeftFunc(v, isWordChar))]
		case "master_replid2":
			// A master that was promoted keeps its old replication id here;
			// one that never was has zeros.
			info.promoted = strings.Trim(v, "0") != ""
		case "role":
			info.role = v
		case "aof_enabled":
			info.aof = v == "1"
		case "maxmemory":
			info.maxmem, _ = strconv.ParseInt(v, 10, 64)
		case "maxmemory_policy":
			info.policy = v
		}
	}
	info.id = orUnknown(replID)
	return info
}

// isWordChar is Lua's %w: an ASCII letter or digit.
func isWordChar(r rune) bool {
	return r < 0x80 && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func isRedisError(err error) bool {
	var rerr goredis.Error
	return errors.As(err, &rerr)
}

func (s serverInfo) addrOrID() string {
	if s.addr != "" {
		return s.addr
	}
	return s.id
}
