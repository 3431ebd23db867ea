package brokertest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/waterspout/waterspout/session"
)

// JoinLeaves returns the join and leave events delivered for ch, in order,
// as "join:<client>:<user>" or "leave:<client>:<user>".
func (r *Recorder) JoinLeaves(ch string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events[ch])
}

// HandleJoinLeave implements session.JoinLeaveHandler.
func (r *Recorder) HandleJoinLeave(ev *session.JoinLeave) {
	r.mu.Lock()
	if r.events == nil {
		r.events = make(map[string][]string)
	}
	r.events[ev.Channel] = append(r.events[ev.Channel], ev.Type+":"+ev.Client+":"+ev.User)
	r.notifyLocked()
	r.mu.Unlock()
}

// WaitJoinLeaves waits until n events of ch were delivered and returns them.
func (r *Recorder) WaitJoinLeaves(t testing.TB, ch string, n int) []string {
	t.Helper()
	if !r.Await(WaitTimeout, func() bool { return len(r.JoinLeaves(ch)) >= n }) {
		t.Fatalf("channel %q: join/leave events %v, waited for %d", ch, r.JoinLeaves(ch), n)
	}
	return r.JoinLeaves(ch)
}

// presenceScenarios run when the broker keeps presence, with a
// subscription to "room" (where they add clients) in place.
var presenceScenarios = []scenario{
	{"presence lists, counts and forgets clients", withPresence(testPresence)},
	{"presence join and leave reach subscribed nodes", withPresence(testJoinLeave)},
	{"presence cap refuses a new client", withPresence(testPresenceCap)},
	{"presence join/leave limit silences big channels", withPresence(testJoinLeaveLimit)},
	{"presence leases keep a long-poll client across polls", withPresence(testPresenceLease)},
}

// withPresence makes a presence scenario one of the suite's: it is skipped
// for a broker that does not keep presence.
func withPresence(run func(t *testing.T, p session.Presencer, rec *Recorder)) func(*testing.T, session.Broker, *Recorder) {
	return func(t *testing.T, b session.Broker, rec *Recorder) {
		p, ok := b.(session.Presencer)
		if !ok {
			t.Skip("the broker does not keep presence")
		}
		subscribe(t, b, "room")
		run(t, p, rec)
	}
}

var big = session.PresenceOptions{Max: 100, Notify: 100}

func add(t *testing.T, p session.Presencer, ch, client, user string, o session.PresenceOptions) int {
	t.Helper()
	n, err := p.AddPresence(context.Background(), ch, session.ClientInfo{Client: client, User: user}, o)
	if err != nil {
		t.Fatalf("add %s: %v", client, err)
	}
	return n
}

func remove(t *testing.T, p session.Presencer, ch, client string, o session.PresenceOptions) {
	t.Helper()
	if err := p.RemovePresence(context.Background(), ch, session.ClientInfo{Client: client}, o); err != nil {
		t.Fatalf("remove %s: %v", client, err)
	}
}

// PresenceList returns ch's presence as p lists it, each entry as
// "<client>:<user>", sorted.
func PresenceList(t testing.TB, p session.Presencer, ch string) []string {
	t.Helper()
	list, err := p.Presence(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range list {
		out = append(out, c.Client+":"+c.User)
	}
	slices.Sort(out)
	return out
}

func testPresence(t *testing.T, p session.Presencer, _ *Recorder) {
	quiet := session.PresenceOptions{Max: 100}
	if got := PresenceList(t, p, "room"); len(got) != 0 {
		t.Fatalf("empty channel lists %v", got)
	}
	if n := add(t, p, "room", "c1", "alice", quiet); n != 1 {
		t.Fatalf("first add counts %d", n)
	}
	add(t, p, "room", "c2", "alice", quiet)
	add(t, p, "room", "c3", "", quiet)
	if n := add(t, p, "room", "c3", "", quiet); n != 3 {
		t.Fatalf("re-adding a client counts %d, want 3", n)
	}
	if got := PresenceList(t, p, "room"); !slices.Equal(got, []string{"c1:alice", "c2:alice", "c3:"}) {
		t.Fatalf("presence %v", got)
	}
	st, err := p.PresenceStats(context.Background(), "room")
	if err != nil || st != (session.PresenceStats{Clients: 3, Users: 2}) {
		t.Fatalf("stats %+v %v, want 3 clients, 2 users", st, err)
	}
	if got := PresenceList(t, p, "other"); len(got) != 0 {
		t.Fatalf("another channel lists %v", got)
	}
	remove(t, p, "room", "c1", quiet)
	remove(t, p, "room", "c1", quiet) // absent: nothing happens
	if got := PresenceList(t, p, "room"); !slices.Equal(got, []string{"c2:alice", "c3:"}) {
		t.Fatalf("presence after remove %v", got)
	}
}

func testJoinLeave(t *testing.T, p session.Presencer, rec *Recorder) {
	add(t, p, "room", "c1", "alice", big)
	add(t, p, "room", "c2", "", big)
	remove(t, p, "room", "c1", big)
	want := []string{"join:c1:alice", "join:c2:", "leave:c1:alice"}
	if got := rec.WaitJoinLeaves(t, "room", 3); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if pubs := rec.Publications("room"); len(pubs) != 0 {
		t.Fatalf("join/leave delivered as %d publications", len(pubs))
	}
}

func testPresenceCap(t *testing.T, p session.Presencer, _ *Recorder) {
	o := session.PresenceOptions{Max: 2}
	add(t, p, "room", "c1", "a", o)
	add(t, p, "room", "c2", "b", o)
	_, err := p.AddPresence(context.Background(), "room", session.ClientInfo{Client: "c3"}, o)
	if !errors.Is(err, session.ErrPresenceFull) {
		t.Fatalf("third add: %v, want ErrPresenceFull", err)
	}
	add(t, p, "room", "c2", "b", o) // already there: not refused
	if got := PresenceList(t, p, "room"); len(got) != 2 {
		t.Fatalf("presence %v", got)
	}
}

func testJoinLeaveLimit(t *testing.T, p session.Presencer, rec *Recorder) {
	o := session.PresenceOptions{Max: 10, Notify: 2}
	add(t, p, "room", "c1", "", o)
	add(t, p, "room", "c2", "", o)
	add(t, p, "room", "c3", "", o) // 3 > 2: silent
	remove(t, p, "room", "c3", o)  // 3 counting it: silent
	remove(t, p, "room", "c2", o)  // 2: announced
	// A sentinel event: once it is in, nothing earlier is still on its way.
	add(t, p, "room", "c9", "", o)
	want := []string{"join:c1:", "join:c2:", "leave:c2:", "join:c9:"}
	if got := rec.WaitJoinLeaves(t, "room", 4); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// testPresenceLease is a long-poll client's entry (session.PresenceLeaser):
// its polls refresh it without a join, another user cannot take it, and
// only the lease of the poll that refreshed it last removes it.
func testPresenceLease(t *testing.T, p session.Presencer, rec *Recorder) {
	l, ok := p.(session.PresenceLeaser)
	if !ok {
		t.Skip("the broker does not keep long-poll clients")
	}
	ctx := context.Background()
	alice := session.ClientInfo{Client: "p1", User: "alice"}
	for _, stamp := range []string{"s1", "s2"} { // two polls
		if n, err := l.RefreshPresence(ctx, "room", alice, stamp, big); err != nil || n != 1 {
			t.Fatalf("refresh %s: %d %v, want 1 entry", stamp, n, err)
		}
	}
	_, err := l.RefreshPresence(ctx, "room", session.ClientInfo{Client: "p1", User: "mallory"}, "s3", big)
	if !errors.Is(err, session.ErrPresenceTaken) {
		t.Fatalf("another user's refresh: %v, want ErrPresenceTaken", err)
	}
	expire := func(stamp string) {
		t.Helper()
		if err := l.ExpirePresence(ctx, "room", alice, stamp, big); err != nil {
			t.Fatalf("expire %s: %v", stamp, err)
		}
	}
	expire("s1") // the first poll's lease: refreshed since, the entry stays
	expire("s3") // the refused poll's stamp was never stored
	if got := PresenceList(t, p, "room"); !slices.Equal(got, []string{"p1:alice"}) {
		t.Fatalf("presence %v after stale leases, want p1:alice", got)
	}
	st, err := p.PresenceStats(ctx, "room")
	if err != nil || st != (session.PresenceStats{Clients: 1, Users: 1}) {
		t.Fatalf("stats %+v %v", st, err)
	}
	expire("s2") // the last poll's lease: the client leaves
	expire("s2") // gone: nothing happens
	if got := PresenceList(t, p, "room"); len(got) != 0 {
		t.Fatalf("presence %v after the lease, want none", got)
	}
	// A leased entry leaves at once with RemovePresence too.
	if _, err := l.RefreshPresence(ctx, "room", session.ClientInfo{Client: "p2", User: ""}, "s4", big); err != nil {
		t.Fatal(err)
	}
	remove(t, p, "room", "p2", big)
	add(t, p, "room", "c9", "", big) // a sentinel: nothing earlier is still on its way
	want := []string{"join:p1:alice", "leave:p1:alice", "join:p2:", "leave:p2:", "join:c9:"}
	if got := rec.WaitJoinLeaves(t, "room", len(want)); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}
