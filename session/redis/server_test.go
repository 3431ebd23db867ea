package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

const sampleInfo = "# Server\r\nredis_version:7.0.15\r\nrun_id:2d1e2917242fc16cd8ee5dd3b2a1f8068d3b9795\r\n\r\n" +
	"# Memory\r\nmaxmemory:67108864\r\nmaxmemory_policy:volatile-lru\r\n\r\n" +
	"# Persistence\r\naof_enabled:1\r\n\r\n" +
	"# Replication\r\nrole:master\r\nconnected_slaves:0\r\n" +
	"master_replid:4601e809669e16af7ab0474d5b3aecb80e38c0fe\r\n" +
	"master_replid2:0000000000000000000000000000000000000000\r\n"

func TestParseInfo(t *testing.T) {
	got := parseInfo(sampleInfo)
	want := serverInfo{id: "4601e809669e16af7ab0474d5b3aecb80e38c0fe", role: "master", aof: true,
		maxmem: 64 << 20, policy: "volatile-lru"}
	if got != want {
		t.Fatalf("parseInfo = %+v, want %+v", got, want)
	}
	if !got.evicts() {
		t.Fatal("volatile-lru with a maxmemory does not evict?")
	}
	promoted := parseInfo(strings.Replace(sampleInfo, "master_replid2:0000", "master_replid2:12ab", 1))
	if !promoted.promoted {
		t.Fatal("a set master_replid2 is not taken for a promotion")
	}
	if id := parseInfo("garbage").id; id != "?" {
		t.Fatalf("identity of an INFO without master_replid: %q", id)
	}
}

// FuzzParseInfo: whatever a server answers to INFO, parsing neither panics
// nor yields an identity that could match a script's (the scripts read
// master_replid with %w+, so an identity is "?" or word characters).
func FuzzParseInfo(f *testing.F) {
	f.Add(sampleInfo)
	f.Add("master_replid:\r\nmaxmemory:-1\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		info := parseInfo(s)
		if info.id == "" || strings.ContainsAny(info.id, " :\r\n") {
			t.Fatalf("identity %q from %q", info.id, s)
		}
	})
}

func TestConfigPicksOneRedis(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"URL", Config{URL: "redis://127.0.0.1:1/0"}, true},
		{"Sentinel", Config{SentinelAddrs: []string{"127.0.0.1:26379"}, MasterName: "m"}, true},
		{"Cluster", Config{ClusterAddrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}}, true},
		{"nothing", Config{}, false},
		{"Sentinel without a master name", Config{SentinelAddrs: []string{"127.0.0.1:26379"}}, false},
		{"a master name without Sentinel", Config{URL: "redis://127.0.0.1:1/0", MasterName: "m"}, false},
		{"URL and Cluster", Config{URL: "redis://127.0.0.1:1/0", ClusterAddrs: []string{"127.0.0.1:7000"}}, false},
		{"Sentinel and Cluster", Config{SentinelAddrs: []string{"a:1"}, MasterName: "m", ClusterAddrs: []string{"b:2"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// scriptedServer answers INFO with the identities in ids, one per call, and
// records the sections each INFO asked for. Like Redis before 7, redis6
// refuses an INFO naming several sections.
type scriptedServer struct {
	goredis.Cmdable // any other command panics
	ids             []string
	redis6          bool
	sections        [][]string
}

type syntaxError struct{}

func (syntaxError) Error() string { return "ERR syntax error" }
func (syntaxError) RedisError()   {}

func (s *scriptedServer) Info(ctx context.Context, section ...string) *goredis.StringCmd {
	if s.redis6 && len(section) > 1 {
		return goredis.NewStringResult("", syntaxError{})
	}
	s.sections = append(s.sections, section)
	id := s.ids[min(len(s.sections), len(s.ids))-1]
	reply := "# Replication\r\nrole:master\r\nmaster_replid:" + id + "\r\nmaster_replid2:0000\r\n"
	if len(section) != 1 {
		reply += "# Persistence\r\naof_enabled:1\r\n# Memory\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n"
	}
	return goredis.NewStringResult(reply, nil)
}

func (s *scriptedServer) ConfigGet(ctx context.Context, parameter string) *goredis.MapStringStringCmd {
	return goredis.NewMapStringStringResult(map[string]string{"appendfsync": "always"}, nil)
}

// TestInspectChecksIdentityCheaply: an inspection asks INFO only for the
// sections it reads, the identity check after CONFIG GET only for the
// replication section (the identity), with the whole INFO where Redis
// refuses several sections; and a change of identity between the two
// INFOs still makes the inspection start over, so settings are never
// paired with another server's identity.
func TestInspectChecksIdentityCheaply(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		redis6 bool
		want   string
	}{
		{false, "[[replication persistence memory] [replication]]"},
		{true, "[[] [replication]]"},
	} {
		s := &scriptedServer{ids: []string{"aaaa", "aaaa"}, redis6: tt.redis6}
		info, err := inspect(ctx, s)
		if err != nil || info.id != "aaaa" || !info.trust {
			t.Fatalf("inspect = %+v, %v", info, err)
		}
		if fmt.Sprint(s.sections) != tt.want {
			t.Fatalf("INFO sections asked: %v, want %s", s.sections, tt.want)
		}
	}

	s := &scriptedServer{ids: []string{"aaaa", "bbbb", "bbbb", "bbbb"}}
	if info, err := inspect(ctx, s); err != nil || info.id != "bbbb" || len(s.sections) != 4 {
		t.Fatalf("after a change of identity: %+v, %v after %d INFOs", info, err, len(s.sections))
	}
	s = &scriptedServer{ids: []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7"}}
	if _, err := inspect(ctx, s); err == nil {
		t.Fatal("a server changing identity at every INFO was inspected")
	}
}
