package session

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
)

var presenceNS = []Namespace{
	{Name: "room", HistorySize: 10, HistoryTTL: 60e9, Anonymous: true, Presence: true, JoinLeave: true},
	{Name: "quiet", Anonymous: true, Presence: true},
}

// joinLeave reports whether f is the join or leave (typ) of client as
// user in ch.
func joinLeave(f wire.Frame, typ, ch, client, user string) bool {
	return f.Type == typ && f.Channel == ch && f.Client == client && f.User == user
}

// events returns the join and leave frames queued on s.
func events(t *testing.T, s *Session) []wire.Frame {
	t.Helper()
	items, err := s.Next(context.Background(), 1e6, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.Frame
	for _, it := range items {
		var f wire.Frame
		if err := json.Unmarshal(it.Frame, &f); err != nil {
			t.Fatal(err)
		}
		if f.Type == "join" || f.Type == "leave" {
			out = append(out, f)
			if it.Channel != "" {
				t.Errorf("a %s frame moved the cursor of %q", f.Type, it.Channel)
			}
		}
	}
	return out
}

func subscribe(t *testing.T, s *Session, ch string) {
	t.Helper()
	if err := s.Subscribe(context.Background(), SubscribeRequest{Channel: ch}); err != nil {
		t.Fatal(err)
	}
}

func clientsOf(t *testing.T, n *Node, ch string) map[string]string {
	t.Helper()
	list, err := n.Presence(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range list {
		out[c.Client] = c.User
	}
	return out
}

// TestPresenceJoinLeave is the scenario on one node: two clients are
// listed, a third one's subscribe is a join to the others (not to itself),
// and its end a leave.
func TestPresenceJoinLeave(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS})
	a, b, c := mustSession(t, n), mustSession(t, n), mustSession(t, n)
	a.SetUser("alice")
	c.SetUser("carol")
	subscribe(t, a, "room:1")
	subscribe(t, b, "room:1")
	events(t, a) // b's join
	events(t, b)
	if got := clientsOf(t, n, "room:1"); len(got) != 2 || got[a.ID()] != "alice" || got[b.ID()] != "" {
		t.Fatalf("presence %v, want a (alice) and b (anonymous)", got)
	}
	subscribe(t, c, "room:1")
	for _, s := range []*Session{a, b} {
		ev := events(t, s)
		if len(ev) != 1 || !joinLeave(ev[0], "join", "room:1", c.ID(), "carol") {
			t.Fatalf("events %+v, want one join of c", ev)
		}
	}
	if ev := events(t, c); len(ev) != 0 {
		t.Fatalf("the joining client got %+v", ev)
	}
	chans, _, err := n.Channels(context.Background(), "room:")
	if err != nil || len(chans) != 1 || chans[0] != (ChannelCount{"room:1", 3}) {
		t.Fatalf("channels %+v %v, want room:1 with 3", chans, err)
	}
	c.Close(ClosedByClient)
	for _, s := range []*Session{a, b} {
		ev := events(t, s)
		if len(ev) != 1 || !joinLeave(ev[0], "leave", "room:1", c.ID(), "carol") {
			t.Fatalf("events %+v, want one leave of c", ev)
		}
	}
	st, err := n.PresenceStats(context.Background(), "room:1")
	if err != nil || st != (PresenceStats{Clients: 2, Users: 2}) {
		t.Fatalf("stats %+v %v, want 2 clients, 2 users", st, err)
	}
	if err := b.Unsubscribe("room:1"); err != nil {
		t.Fatal(err)
	}
	if ev := events(t, a); len(ev) != 1 || ev[0].Type != "leave" || ev[0].Client != b.ID() {
		t.Fatalf("events %+v, want b's leave", ev)
	}
	if got := clientsOf(t, n, "room:1"); len(got) != 1 {
		t.Fatalf("presence %v after unsubscribe, want a alone", got)
	}
}

func TestPresenceWithoutJoinLeave(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS})
	a, b := mustSession(t, n), mustSession(t, n)
	subscribe(t, a, "quiet:1")
	subscribe(t, b, "quiet:1")
	if ev := events(t, a); len(ev) != 0 {
		t.Fatalf("join/leave off, got %+v", ev)
	}
	if got := clientsOf(t, n, "quiet:1"); len(got) != 2 {
		t.Fatalf("presence %v", got)
	}
	if _, err := n.Presence(context.Background(), "plain"); AsError(err).Code != 403 {
		t.Fatalf("presence of a namespace without it: %v, want 403", err)
	}
}

func TestPresenceLimits(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, MaxPresence: 3, JoinLeaveLimit: 2})
	var ss []*Session
	for range 3 {
		s := mustSession(t, n)
		subscribe(t, s, "room:1")
		ss = append(ss, s)
	}
	// The third join is over the join/leave limit: nobody hears of it.
	if ev := events(t, ss[0]); len(ev) != 1 || ev[0].Client != ss[1].ID() {
		t.Fatalf("events %+v, want only the second client's join", ev)
	}
	over := mustSession(t, n)
	err := over.Subscribe(context.Background(), SubscribeRequest{Channel: "room:1"})
	if !errors.Is(err, ErrPresenceFull) && AsError(err).Code != 429 {
		t.Fatalf("subscribe over the cap: %v, want 429", err)
	}
	if got := over.Channels(); len(got) != 0 {
		t.Fatalf("a refused subscribe left %v", got)
	}
	if got := clientsOf(t, n, "room:1"); len(got) != 3 {
		t.Fatalf("presence %d entries, want 3", len(got))
	}
	ss[2].Close(ClosedByClient) // 3 entries counting it: over the limit, silent
	ss[1].Close(ClosedByClient) // 2: announced
	if ev := events(t, ss[0]); len(ev) != 1 || ev[0].Type != "leave" || ev[0].Client != ss[1].ID() {
		t.Fatalf("events %+v, want only the second client's leave", ev)
	}
}

func TestPresenceSkipped(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS})
	s := mustSession(t, n)
	s.SkipPresence()
	subscribe(t, s, "room:1")
	if got := clientsOf(t, n, "room:1"); len(got) != 0 {
		t.Fatalf("a session that skips presence is listed: %v", got)
	}
}

func TestControlDisconnectAndUnsubscribe(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS})
	a1, a2, b := mustSession(t, n), mustSession(t, n), mustSession(t, n)
	a1.SetUser("alice")
	a2.SetUser("alice")
	b.SetUser("bob")
	for _, s := range []*Session{a1, a2, b} {
		subscribe(t, s, "room:1")
		subscribe(t, s, "news")
	}
	if err := n.UnsubscribeUser(context.Background(), "alice", "news"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Session{a1, a2} {
		fs := drain(t, s)
		last := fs[len(fs)-1]
		if last.Type != "unsubscribed" || last.Channel != "news" || last.Code != UnsubscribedByServer {
			t.Fatalf("last frame %+v, want unsubscribed from news", last)
		}
		if got := s.Channels(); len(got) != 1 || got[0] != "room:1" {
			t.Fatalf("channels %v, want room:1 only", got)
		}
	}
	if len(b.Channels()) != 2 {
		t.Fatal("bob lost a subscription")
	}
	if err := n.Disconnect(context.Background(), "alice", a2.ID()); err != nil {
		t.Fatal(err)
	}
	if a1.Done() || !a2.Done() || a2.Reason() != DisconnectByServer {
		t.Fatalf("disconnect of one client: a1 done %v, a2 done %v (%v)", a1.Done(), a2.Done(), a2.Reason())
	}
	if err := n.Disconnect(context.Background(), "alice", ""); err != nil {
		t.Fatal(err)
	}
	if !a1.Done() || b.Done() {
		t.Fatalf("disconnect of alice: a1 done %v, b done %v", a1.Done(), b.Done())
	}
	if err := n.Disconnect(context.Background(), "", ""); AsError(err).Code != 400 {
		t.Fatalf("disconnect without a user: %v, want 400", err)
	}
}

func TestPresenceCommand(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS})
	a, b := mustSession(t, n), mustSession(t, n)
	a.SetUser("alice")
	b.SetUser("alice")
	subscribe(t, a, "room:1")
	subscribe(t, b, "room:1")
	drain(t, a)
	if err := a.HandleCommand(context.Background(), []byte(`{"type":"presence_stats","id":7,"channel":"room:1"}
{"type":"presence","id":8,"channel":"room:1"}
{"type":"presence","id":9,"channel":"room:2"}`)); err != nil {
		t.Fatal(err)
	}
	items, _ := a.Next(context.Background(), 1e6, nil)
	if len(items) != 3 {
		t.Fatalf("%d answers, want 3", len(items))
	}
	var st struct {
		ID      uint64
		Clients int
		Users   int
	}
	if json.Unmarshal(items[0].Frame, &st); st.ID != 7 || st.Clients != 2 || st.Users != 1 {
		t.Fatalf("stats answer %s", items[0].Frame)
	}
	var list struct {
		ID      uint64
		Clients []ClientInfo
	}
	if json.Unmarshal(items[1].Frame, &list); list.ID != 8 || len(list.Clients) != 2 {
		t.Fatalf("presence answer %s", items[1].Frame)
	}
	var e wire.Frame
	if json.Unmarshal(items[2].Frame, &e); e.Type != "error" || e.Code != 403 {
		t.Fatalf("presence of a channel not subscribed: %s, want error 403", items[2].Frame)
	}
}

func TestPresenceConfig(t *testing.T) {
	b := NewMemoryBroker(MemoryBrokerConfig{})
	defer b.Close()
	_, err := New(Config{Broker: b, Namespaces: []Namespace{{Name: "x", JoinLeave: true}}})
	if err == nil {
		t.Fatal("joinLeave without presence accepted")
	}
	_, err = New(Config{Broker: noPresenceBroker{b}, Namespaces: []Namespace{{Name: "x", Presence: true}}})
	if err == nil {
		t.Fatal("presence on a broker without it accepted")
	}
}

// noPresenceBroker hides the memory broker's presence.
type noPresenceBroker struct{ Broker }

// TestJoinLeaveStormBound: N clients arriving in one channel cost at most
// L(L-1)/2 join frames in all (L = JoinLeaveLimit), not N(N-1)/2.
func TestJoinLeaveStormBound(t *testing.T) {
	const clients, limit = 60, 10
	n := newTestNode(t, Config{Namespaces: presenceNS, JoinLeaveLimit: limit})
	var ss []*Session
	for range clients {
		s := mustSession(t, n)
		subscribe(t, s, "room:storm")
		ss = append(ss, s)
	}
	total := 0
	for _, s := range ss {
		total += len(events(t, s))
	}
	if want := limit * (limit - 1) / 2; total != want {
		t.Fatalf("%d join frames for %d clients, want %d (the first %d joins only)", total, clients, want, limit)
	}
	if got := clientsOf(t, n, "room:storm"); len(got) != clients {
		t.Fatalf("presence lists %d, want all %d", len(got), clients)
	}
}

// TestChannelsMatchingFiltersBeforeTheCut: a caller that may see only the
// channels sorting last still gets them, not an empty truncated list.
func TestChannelsMatchingFiltersBeforeTheCut(t *testing.T) {
	old := maxChannelsListed
	maxChannelsListed = 2
	t.Cleanup(func() { maxChannelsListed = old })
	n := newTestNode(t, Config{Namespaces: presenceNS})
	s := mustSession(t, n)
	for _, ch := range []string{"room:a", "room:b", "room:c", "room:z1", "room:z2"} {
		subscribe(t, s, ch)
	}
	got, truncated, err := n.ChannelsMatching(context.Background(), "room:", func(ch string) bool { return strings.HasPrefix(ch, "room:z") })
	if err != nil || truncated || len(got) != 2 || got[0].Channel != "room:z1" || got[1].Channel != "room:z2" {
		t.Fatalf("got %+v truncated %v err %v, want room:z1 and room:z2, not truncated", got, truncated, err)
	}
	got, truncated, err = n.Channels(context.Background(), "room:")
	if err != nil || !truncated || len(got) != 2 || got[0].Channel != "room:a" {
		t.Fatalf("unfiltered: got %+v truncated %v err %v, want the first 2, truncated", got, truncated, err)
	}
}

// TestPresenceCommandCap: the presence command lists at most
// MaxPresenceListed entries; above it the asker gets error 413 and
// presence_stats still answers.
func TestPresenceCommandCap(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, MaxPresenceListed: 2})
	a := mustSession(t, n)
	subscribe(t, a, "quiet:1")
	subscribe(t, mustSession(t, n), "quiet:1")
	ask := func() []Item {
		t.Helper()
		drain(t, a)
		if err := a.HandleCommand(context.Background(), []byte(`{"type":"presence","id":1,"channel":"quiet:1"}
{"type":"presence_stats","id":2,"channel":"quiet:1"}`)); err != nil {
			t.Fatal(err)
		}
		items, _ := a.Next(context.Background(), 1e6, nil)
		if len(items) != 2 {
			t.Fatalf("%d answers, want 2", len(items))
		}
		return items
	}
	var list struct{ Clients []ClientInfo }
	if items := ask(); json.Unmarshal(items[0].Frame, &list) != nil || len(list.Clients) != 2 {
		t.Fatalf("at the cap: %s, want the 2 clients", items[0].Frame)
	}
	subscribe(t, mustSession(t, n), "quiet:1")
	items := ask()
	var e wire.Frame
	if json.Unmarshal(items[0].Frame, &e); e.Type != "error" || e.Code != 413 || !strings.Contains(string(items[0].Frame), "presence_stats") {
		t.Fatalf("above the cap: %s, want error 413 pointing to presence_stats", items[0].Frame)
	}
	var st struct{ Clients int }
	if json.Unmarshal(items[1].Frame, &st); st.Clients != 3 {
		t.Fatalf("stats above the cap: %s", items[1].Frame)
	}
}

// deadlineBroker records the deadline of every RemovePresence call.
type deadlineBroker struct {
	*MemoryBroker
	mu        sync.Mutex
	deadlines []time.Time
}

func (b *deadlineBroker) RemovePresence(ctx context.Context, ch string, info ClientInfo, opts PresenceOptions) error {
	d, _ := ctx.Deadline()
	b.mu.Lock()
	b.deadlines = append(b.deadlines, d)
	b.mu.Unlock()
	return b.MemoryBroker.RemovePresence(ctx, ch, info, opts)
}

// batchBroker records RemovePresences calls.
type batchBroker struct {
	*MemoryBroker
	mu      sync.Mutex
	batches [][]string
}

func (b *batchBroker) RemovePresences(ctx context.Context, info ClientInfo, chans []string, opts func(string) PresenceOptions) error {
	b.mu.Lock()
	b.batches = append(b.batches, slices.Sorted(slices.Values(chans)))
	b.mu.Unlock()
	for _, ch := range chans {
		if err := b.MemoryBroker.RemovePresence(ctx, ch, info, opts(ch)); err != nil {
			return err
		}
	}
	return nil
}

// TestCloseLeavesPresenceUnderOneTimeout: a closing session's presence
// removals share one deadline (a broker hang costs one timeout, not one
// per channel), or go in one batch when the broker can.
func TestCloseLeavesPresenceUnderOneTimeout(t *testing.T) {
	chans := []string{"room:1", "room:2", "room:3", "plain"}
	db := &deadlineBroker{MemoryBroker: NewMemoryBroker(MemoryBrokerConfig{})}
	t.Cleanup(func() { db.Close() })
	closeSubscribed(t, db, chans)
	db.mu.Lock()
	got := slices.Clone(db.deadlines)
	db.mu.Unlock()
	if len(got) != 3 || !got[0].Equal(got[1]) || !got[0].Equal(got[2]) || got[0].IsZero() {
		t.Fatalf("removal deadlines %v, want 3 calls sharing one deadline", got)
	}

	bb := &batchBroker{MemoryBroker: NewMemoryBroker(MemoryBrokerConfig{})}
	t.Cleanup(func() { bb.Close() })
	n := closeSubscribed(t, bb, chans)
	if len(bb.batches) != 1 || !slices.Equal(bb.batches[0], []string{"room:1", "room:2", "room:3"}) {
		t.Fatalf("batches %v, want one with the 3 presence channels", bb.batches)
	}
	if list, _ := n.Presence(context.Background(), "room:1"); len(list) != 0 {
		t.Fatalf("presence after close: %v", list)
	}
}

// closeSubscribed makes a node on b, with a session subscribed to chans
// that the client then closes; it returns the node.
func closeSubscribed(t *testing.T, b Broker, chans []string) *Node {
	t.Helper()
	n, err := New(Config{Broker: b, Namespaces: presenceNS})
	if err != nil {
		t.Fatal(err)
	}
	s := mustSession(t, n)
	for _, ch := range chans {
		subscribe(t, s, ch)
	}
	s.Close(ClosedByClient)
	return n
}
