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
