package session

import (
	"context"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"
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
// sessions of as many users and 10,000 long-poll clients' leases, none of
// them the order's user's, and reports the heap each of those sessions
// takes (the bare session, with its user).
func BenchmarkDisconnectOrder(b *testing.B) {
	const sessions, leases = 100_000, 10_000
	n := newTestNode(b, Config{PollLease: time.Hour})
	for i := range leases {
		info := ClientInfo{Client: newID(), User: "poller-" + strconv.Itoa(i)}
		n.leases.start(n, "room", info, time.Now(), newID())
	}
	b.Cleanup(func() {
		for key := range n.leases.m {
			n.leases.hold(key.ch, key.client)
		}
	})
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

// BenchmarkCloseSharedUser times opening and closing, in a shuffled order,
// 10,000 sessions of one user (a site whose pages share one subject): the
// user index must take a session out in constant time, under Node.mu.
func BenchmarkCloseSharedUser(b *testing.B) {
	const sessions = 10_000
	n := newTestNode(b, Config{})
	list := make([]*Session, sessions)
	b.ReportAllocs()
	for b.Loop() {
		for i := range list {
			s, err := n.NewSession("bench")
			if err != nil {
				b.Fatal(err)
			}
			s.SetUser("site")
			list[i] = s
		}
		rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
		for _, s := range list {
			s.Close(Disconnect{})
		}
	}
}
