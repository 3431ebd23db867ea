package session

import (
	"context"
	"errors"
	"testing"
	"time"
)

// nextPoll is a later poll of a long-poll client of user that claims with
// claim, and what its first Subscribe said.
func nextPoll(t *testing.T, n *Node, user, claim string) (*Session, error) {
	t.Helper()
	s := mustSession(t, n)
	s.PollPresence(claim)
	s.SetUser(user)
	return s, s.Subscribe(context.Background(), SubscribeRequest{Channel: "room:1"})
}

// TestDisconnectReachesPollersBetweenPolls: a disconnect order that comes
// while a long-poll client is between two polls ends its next poll with
// 3504, as it ends a held one. Only the user named (and only the client,
// when one is named) is reached, and a client that connects again after
// the order is not. Their presence entries, kept by leases, leave at once.
func TestDisconnectReachesPollersBetweenPolls(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, PollLease: time.Minute})
	first := func(user string) string { // a first poll, answered: between polls
		s := pollSession(t, n, user, "")
		s.Close(answered)
		return s.ID()
	}
	alice1, alice2, bob := first("alice"), first("alice"), first("bob")
	listed := func(want ...string) {
		t.Helper()
		got := clientsOf(t, n, "room:1")
		if len(got) != len(want) {
			t.Fatalf("presence %v, want the clients of %v", got, want)
		}
		for _, claim := range want {
			if _, ok := got[PollClientID(claim)]; !ok {
				t.Fatalf("presence %v misses %s", got, PollClientID(claim))
			}
		}
	}
	listed(alice1, alice2, bob) // kept by their leases
	if err := n.Disconnect(context.Background(), "alice", PollClientID(alice2)); err != nil {
		t.Fatal(err)
	}
	listed(alice1, bob) // a terminal end leaves at once, not a lease later
	ended := func(who string, s *Session, err error) {
		t.Helper()
		if !errors.Is(err, ErrClosed) || s.Reason() != DisconnectByServer {
			t.Fatalf("%s's next poll: %v, %v; want it ended with 3504", who, err, s.Reason())
		}
	}
	goesOn := func(who string, s *Session, err error) {
		t.Helper()
		if err != nil || s.Reason() != (Disconnect{}) {
			t.Fatalf("%s's next poll: %v, %v; want it subscribed", who, err, s.Reason())
		}
		s.Close(answered)
	}
	s, err := nextPoll(t, n, "alice", alice2)
	ended("the client named", s, err)
	s, err = nextPoll(t, n, "alice", alice1)
	goesOn("alice's other client", s, err)

	if err := n.Disconnect(context.Background(), "alice", ""); err != nil {
		t.Fatal(err)
	}
	listed(bob)
	s, err = nextPoll(t, n, "alice", alice1)
	ended("alice's client", s, err)
	s, err = nextPoll(t, n, "bob", bob)
	goesOn("bob", s, err)
	// The same id under another user is not alice's client.
	s, err = nextPoll(t, n, "mallory", alice1)
	goesOn("another user claiming alice's id", s, err)
	// alice connects again: a new first poll, then its next polls. (Ids
	// hold milliseconds: one made in the order's millisecond counts as
	// before it.)
	time.Sleep(2 * time.Millisecond)
	again := first("alice")
	s, err = nextPoll(t, n, "alice", again)
	goesOn("alice, connected again", s, err)
	// An id that holds no time (an older server's, a made-up one) was
	// given before any order.
	s, err = nextPoll(t, n, "alice", "q3K0c2Vzc2lvbjE")
	ended("alice with an id of unknown age", s, err)
}

// TestDisconnectOrdersExpire: an order is kept for one poll lease.
func TestDisconnectOrdersExpire(t *testing.T) {
	o := disconnectOrders{keep: time.Minute}
	t0 := time.Unix(1_800_000_000, 0)
	o.record("alice", "", t0)
	for _, tt := range []struct {
		issued, now time.Time
		want        bool
	}{
		{t0.Add(-time.Second), t0, true},
		{t0.Add(-time.Second), t0.Add(time.Minute), true},
		{t0.Add(-time.Second), t0.Add(time.Minute + time.Millisecond), false},
		{t0, t0, false}, // issued at the order: not before it
		{t0.Add(time.Second), t0.Add(time.Second), false},
	} {
		if got := o.after("alice", "c", tt.issued, tt.now); got != tt.want {
			t.Errorf("issued %v, now %v: %v, want %v", tt.issued.Sub(t0), tt.now.Sub(t0), got, tt.want)
		}
	}
	if o.after("bob", "", t0.Add(-time.Second), t0) {
		t.Error("an order for alice reached bob")
	}
}

// TestIDTime: a session id holds the millisecond it was made; anything
// else holds no time.
func TestIDTime(t *testing.T) {
	before := time.Now().Truncate(time.Millisecond)
	id := newID()
	got, ok := idTime(id)
	if !ok || got.Before(before) || got.After(time.Now()) || len(id) != 24 || !ValidPollClient(id) {
		t.Fatalf("id %q holds %v %v, made after %v", id, got, ok, before)
	}
	for _, bad := range []string{"", "q3K0c2Vzc2lvbjE", id[:23], id + "A", "!!!!!!!!!!!!!!!!!!!!!!!!"} {
		if _, ok := idTime(bad); ok {
			t.Errorf("idTime(%q) holds a time", bad)
		}
	}
}
