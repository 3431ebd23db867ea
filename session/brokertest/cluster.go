package brokertest

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RedisCluster is a Redis Cluster of masters without replicas, started by a
// test: each a RedisServer with cluster mode on.
type RedisCluster struct {
	Masters  []*RedisServer // as created; a failover may promote a replica
	Replicas []*RedisServer
}

// Addrs returns the masters' host:port.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.Masters))
	for i, m := range c.Masters {
		addrs[i] = m.Addr()
	}
	return addrs
}

// StartRedisCluster starts n masters (1, or 3 or more), joins them with
// redis-cli --cluster create (slots spread evenly, no replicas) and waits until every node
// reports cluster_state:ok.
func StartRedisCluster(t testing.TB, n int) *RedisCluster {
	t.Helper()
	return StartRedisClusterReplicas(t, n, 0)
}

// StartRedisClusterReplicas is StartRedisCluster with replicas replicas
// per master, which the cluster promotes 1-2 s after their master fails.
func StartRedisClusterReplicas(t testing.TB, n, replicas int) *RedisCluster {
	t.Helper()
	c := &RedisCluster{}
	start := func() *RedisServer {
		return StartRedisServerArgs(t,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0")
	}
	for i := 0; i < n; i++ {
		c.Masters = append(c.Masters, start())
	}
	for i := 0; i < n*replicas; i++ {
		c.Replicas = append(c.Replicas, start())
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is not installed (Debian package redis-tools): %v", err)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	for _, r := range c.Replicas {
		args = append(args, r.Addr())
	}
	args = append(args, "--cluster-replicas", fmt.Sprint(replicas), "--cluster-yes")
	if n == 1 {
		// redis-cli creates clusters of 3 masters or more; one master
		// takes every slot itself.
		args = []string{"-p", fmt.Sprint(c.Masters[0].Port()), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"}
	}
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	deadline := time.Now().Add(WaitTimeout)
	for _, m := range append(append([]*RedisServer{}, c.Masters...), c.Replicas...) {
		for !clusterOK(m.Addr()) {
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not ok within %v", m.Addr(), WaitTimeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}

// clusterOK asks a node whether its CLUSTER INFO says cluster_state:ok.
func clusterOK(addr string) bool {
	line, err := command(addr, "CLUSTER INFO", func(line string) bool {
		return strings.HasPrefix(line, "cluster_state:")
	})
	return err == nil && strings.TrimSpace(line) == "cluster_state:ok"
}
