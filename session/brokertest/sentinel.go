package brokertest

import (
	"fmt"
	"testing"
)

// SentinelMaster is the master name StartSentinel monitors.
const SentinelMaster = "wsmaster"

// StartSentinel starts a Redis Sentinel that monitors master under the name
// SentinelMaster, with quorum 1 and timeouts short enough for tests: the
// master is down after 1 s without an answer, and a failover may take 3 s.
func StartSentinel(t testing.TB, master *RedisServer) *RedisServer {
	t.Helper()
	conf := fmt.Sprintf(`sentinel monitor %[1]s 127.0.0.1 %[2]d 1
sentinel down-after-milliseconds %[1]s 1000
sentinel failover-timeout %[1]s 3000
sentinel parallel-syncs %[1]s 1
`, SentinelMaster, master.Port())
	return startRedisServer(t, conf, nil)
}

// ReplicaArgs are the redis-server arguments of a replica of master.
func ReplicaArgs(master *RedisServer) []string {
	return []string{"--replicaof", "127.0.0.1", fmt.Sprint(master.Port())}
}
