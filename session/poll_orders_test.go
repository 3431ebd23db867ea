package session

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
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
	o.record("alice", "", t0, t0)
	for _, tt := range []struct {
		issued, now time.Time
		want        bool
	}{
		{t0.Add(-time.Second), t0, true},
		{t0.Add(-time.Second), t0.Add(time.Minute), true},
		{t0.Add(-time.Second), t0.Add(time.Minute + time.Millisecond), false},
		{t0, t0, true}, // issued in the order's millisecond: before it
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

// TestLateOrderKeepsItsTime: a node that carries out an order late (Redis
// pub/sub lag) remembers it with the time it was given, so a client that
// connected in between is neither ended nor removed from presence, while
// one that connected before it is.
func TestLateOrderKeepsItsTime(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, PollLease: time.Minute})
	before := pollSession(t, n, "alice", "")
	before.Close(answered)
	time.Sleep(2 * time.Millisecond)
	given := time.Now()
	time.Sleep(2 * time.Millisecond)
	after := pollSession(t, n, "alice", "") // connected after the order was given
	after.Close(answered)
	time.Sleep(5 * time.Millisecond)
	n.runControl(Control{Op: ControlDisconnect, User: "alice", At: given.UnixMilli()}, false) // reaches this node now
	if got := clientsOf(t, n, "room:1"); len(got) != 1 || got[after.PresenceClient()] != "alice" {
		t.Fatalf("presence %v, want only the client that connected after the order", got)
	}
	if s, err := nextPoll(t, n, "alice", after.ID()); err != nil {
		t.Fatalf("the client that connected after the order: %v, %v", err, s.Reason())
	}
	if s, err := nextPoll(t, n, "alice", before.ID()); !errors.Is(err, ErrClosed) || s.Reason() != DisconnectByServer {
		t.Fatalf("the client that connected before the order: %v, %v", err, s.Reason())
	}
}

// TestOrderForAFallbackEntry: a poll whose claimed entry is another
// user's gets an entry of its own (enterLease); an order naming that
// entry's listed id reaches the poll.
func TestOrderForAFallbackEntry(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, PollLease: time.Minute})
	a := pollSession(t, n, "alice", "")
	a.Close(answered)
	m := pollSession(t, n, "mallory", a.ID()) // held
	listed := PollClientID(m.ID())
	if got := clientsOf(t, n, "room:1"); got[listed] != "mallory" {
		t.Fatalf("presence %v, want mallory's own entry %s", got, listed)
	}
	if err := n.Disconnect(context.Background(), "mallory", listed); err != nil {
		t.Fatal(err)
	}
	if m.Reason() != DisconnectByServer {
		t.Fatalf("the held poll: %v, want 3504", m.Reason())
	}
}

// TestOrderDuringAnAnswer: an order carried out while a poll is being
// answered finds no lease yet (the answer starts it after). The client's
// next poll, ended by the order, ends that lease too: the entry leaves
// now, not a lease later.
func TestOrderDuringAnAnswer(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, PollLease: time.Hour})
	p := pollSession(t, n, "alice", "")
	listed := p.PresenceClient()
	n.orders.record("alice", "", time.Now(), time.Now()) // the order, carried out as the answer goes
	time.Sleep(2 * time.Millisecond)
	p.Close(answered) // then the answer: its lease starts
	if got := clientsOf(t, n, "room:1"); got[listed] != "alice" {
		t.Fatalf("presence %v, want the answered poll's lease", got)
	}
	if s, err := nextPoll(t, n, "alice", p.ID()); !errors.Is(err, ErrClosed) || s.Reason() != DisconnectByServer {
		t.Fatalf("next poll: %v, %v; want it ended with 3504", err, s.Reason())
	}
	if got := clientsOf(t, n, "room:1"); len(got) != 0 {
		t.Fatalf("presence %v after the ended poll, want none", got)
	}
}

// TestLateOrderSparesWhatCameAfter: an order a broker hands over late
// (read from its log after live delivery missed the node) ends the
// sessions made, and the subscriptions begun, by its time, and spares
// those that came after: they are not what the backend ordered away.
func TestLateOrderSparesWhatCameAfter(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS})
	ctx := context.Background()
	user := func(s *Session) *Session { s.SetUser("alice"); return s }
	older := user(mustSession(t, n))
	if err := older.Subscribe(ctx, SubscribeRequest{Channel: "room:1"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	given := time.Now().UnixMilli()
	time.Sleep(2 * time.Millisecond)
	newer := user(mustSession(t, n))
	if err := older.Subscribe(ctx, SubscribeRequest{Channel: "room:2"}); err != nil { // after the order, by an older session
		t.Fatal(err)
	}

	n.runControl(Control{Op: ControlUnsubscribe, User: "alice", Channel: "room:1", At: given, Late: true}, false)
	n.runControl(Control{Op: ControlUnsubscribe, User: "alice", Channel: "room:2", At: given, Late: true}, false)
	if held := older.Channels(); len(held) != 1 || held[0] != "room:2" {
		t.Fatalf("the older session holds %v after late unsubscribe orders: want room:1 (begun before them) gone and room:2 (begun after) kept", held)
	}

	n.runControl(Control{Op: ControlDisconnect, User: "alice", At: given, Late: true}, false)
	if older.Reason() != DisconnectByServer {
		t.Fatalf("the session made before the order: %v, want 3504", older.Reason())
	}
	if newer.Reason() != (Disconnect{}) {
		t.Fatalf("the session made after the order was ended: %v", newer.Reason())
	}
	// The same order live ends every session of the user, as it always has.
	n.runControl(Control{Op: ControlDisconnect, User: "alice", At: given}, false)
	if newer.Reason() != DisconnectByServer {
		t.Fatalf("a live order: %v, want 3504", newer.Reason())
	}
}

// TestLateOrderReachesPollers: a long-poll client's polls are sessions of
// their own, each newer than an order the node learns of late; the order
// still ends them, by the time its client first connected, and stays
// remembered for a lease from when the node learned of it, even when it
// was given longer ago than that.
func TestLateOrderReachesPollers(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, PollLease: time.Minute})
	first := pollSession(t, n, "alice", "")
	first.Close(answered)
	given := time.Now().Add(-2 * time.Minute) // more than a lease ago
	// The client connected before the order (in the test: its id is made
	// to hold an older time), and went on polling here, cut off.
	claim := idAt(given.Add(-time.Second))
	held := pollSession(t, n, "alice", claim)
	if err := held.Subscribe(context.Background(), SubscribeRequest{Channel: "quiet:1"}); err != nil {
		t.Fatal(err)
	}
	n.runControl(Control{Op: ControlUnsubscribe, User: "alice", Channel: "quiet:1", At: given.UnixMilli(), Late: true}, false)
	if slices.Contains(held.Channels(), "quiet:1") {
		t.Fatal("a late unsubscribe order spared a poll of a client that connected before it")
	}
	n.runControl(Control{Op: ControlDisconnect, User: "alice", At: given.UnixMilli(), Late: true}, false)
	if held.Reason() != DisconnectByServer {
		t.Fatalf("the held poll: %v, want 3504", held.Reason())
	}
	if s, err := nextPoll(t, n, "alice", claim); !errors.Is(err, ErrClosed) || s.Reason() != DisconnectByServer {
		t.Fatalf("the next poll: %v, %v, want 3504", err, s.Reason())
	}
	if s, err := nextPoll(t, n, "alice", first.ID()); err != nil {
		t.Fatalf("a client that connected after the order: %v, %v", err, s.Reason())
	}
}

// idAt returns a session id made at t.
func idAt(t time.Time) string {
	raw, _ := b64.DecodeString(newID())
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		raw[i] = byte(ms)
		ms >>= 8
	}
	return b64.EncodeToString(raw)
}

// TestOrdersOutOfOrder: an older order remembered after a newer one (read
// late from the broker's log) does not take back the newer one's time.
func TestOrdersOutOfOrder(t *testing.T) {
	o := disconnectOrders{keep: time.Hour}
	t0 := time.Now()
	o.record("alice", "", t0, t0)
	o.record("alice", "", t0.Add(-time.Minute), t0)
	if !o.after("alice", "", t0.Add(-time.Second), t0) {
		t.Fatal("a client that connected between the two orders escaped the newer one")
	}
}

// TestUserIndex: an order reaches the sessions of its user through the
// node's index by user, which follows SetUser (a token refreshed with
// another subject) and forgets closed sessions, however they end.
func TestUserIndex(t *testing.T) {
	n := newTestNode(t, Config{})
	var alice []*Session
	for range 3 {
		s := mustSession(t, n)
		s.SetUser("alice")
		alice = append(alice, s)
	}
	moved := mustSession(t, n)
	moved.SetUser("alice")
	moved.SetUser("bob") // now bob's, not alice's
	anon := mustSession(t, n)
	alice[1].Close(Disconnect{})

	n.runControl(Control{Op: ControlDisconnect, User: "alice"}, false)
	for i, s := range alice {
		if i != 1 && s.Reason() != DisconnectByServer {
			t.Errorf("alice's session %d: %v, want 3504", i, s.Reason())
		}
	}
	if moved.Reason() != (Disconnect{}) || anon.Reason() != (Disconnect{}) {
		t.Fatalf("an order for alice reached bob's (%v) or an anonymous session (%v)", moved.Reason(), anon.Reason())
	}
	n.runControl(Control{Op: ControlDisconnect, User: "bob"}, false)
	if moved.Reason() != DisconnectByServer {
		t.Fatalf("bob's session: %v, want 3504", moved.Reason())
	}

	// Many sessions of one subject (every page of a site with one token),
	// half of them closed in a shuffled order: the order reaches exactly
	// the others.
	var shared []*Session
	for range 64 {
		s := mustSession(t, n)
		s.SetUser("site")
		shared = append(shared, s)
	}
	order := rand.Perm(len(shared))
	for _, i := range order[:32] {
		shared[i].Close(Disconnect{})
	}
	n.runControl(Control{Op: ControlDisconnect, User: "site"}, false)
	for _, i := range order[32:] {
		if shared[i].Reason() != DisconnectByServer {
			t.Fatalf("an open session of a shared user: %v, want 3504", shared[i].Reason())
		}
	}

	for _, s := range append(append(alice, moved, anon), shared...) {
		s.Close(Disconnect{})
	}
	late := mustSession(t, n)
	late.Close(Disconnect{})
	late.SetUser("carol") // after its close: not filed
	n.mu.Lock()
	left := len(n.users)
	n.mu.Unlock()
	if left != 0 {
		t.Fatalf("the user index holds %d users after every session closed", left)
	}
}
