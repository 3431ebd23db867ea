package session

import (
	"context"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkMemoryPresence reports the heap one presence entry costs in the
// memory broker (10,000 clients in one channel, ids and users as a node
// makes them), and times one Presence read of the channel (ns/op).
func BenchmarkMemoryPresence(b *testing.B) {
	const clients = 10_000
	ctx := context.Background()
	br := NewMemoryBroker(MemoryBrokerConfig{})
	defer br.Close()
	opts := PresenceOptions{Max: clients}
	infos := make([]ClientInfo, clients)
	for i := range infos {
		infos[i] = ClientInfo{Client: newID(), User: "user-" + strconv.Itoa(i%5000)}
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for _, info := range infos {
		if _, err := br.AddPresence(ctx, "room", info, opts); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	perEntry := float64(m1.HeapAlloc-m0.HeapAlloc) / clients
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		list, err := br.Presence(ctx, "room")
		if err != nil || len(list) != clients {
			b.Fatal(len(list), err)
		}
	}
	b.ReportMetric(perEntry, "heap-bytes/entry")
	runtime.KeepAlive(infos)
}

// BenchmarkDisconnectOrder times one disconnect order (POST
// /api/disconnect, as each node runs it) on a node holding 100,000
// sessions of as many users, none of them the order's user, and reports
// the heap each of those sessions takes (the bare session, with its user).
func BenchmarkDisconnectOrder(b *testing.B) {
	const sessions = 100_000
	n := newTestNode(b, Config{})
	users := make([]string, sessions)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for _, u := range users {
		s, err := n.NewSession("bench")
		if err != nil {
			b.Fatal(err)
		}
		s.SetUser(u)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.ReportAllocs()
	for b.Loop() {
		n.runControl(Control{Op: ControlDisconnect, User: "nobody"}, false)
	}
	// After the loop: b.Loop's start deletes metrics reported before it.
	b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/sessions, "heapB/session")
}
