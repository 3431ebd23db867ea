package session

import (
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
)

// pollSession is one poll of a long-poll client of user, claiming client.
func pollSession(t *testing.T, n *Node, user, client string) *Session {
	t.Helper()
	s := mustSession(t, n)
	s.PollPresence(client)
	s.SetUser(user)
	subscribe(t, s, "room:1")
	return s
}

// answered is how a poll's session ends when its answer goes out.
var answered = Disconnect{Reason: "answered"}

// TestPollPresenceLease: a long-poll client is listed under its first
// poll's id, its later polls (claiming that id) neither join nor leave, and
// it leaves once a lease passes without a poll.
func TestPollPresenceLease(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, PollLease: 50 * time.Millisecond})
	w := mustSession(t, n)
	w.SetUser("carol")
	subscribe(t, w, "room:1")
	events(t, w)

	p1 := pollSession(t, n, "alice", "")
	claim, id := p1.ID(), p1.PresenceClient()
	if id != PollClientID(claim) {
		t.Fatalf("the first poll is listed as %s, want %s", id, PollClientID(claim))
	}
	if got := clientsOf(t, n, "room:1"); got[id] != "alice" || len(got) != 2 {
		t.Fatalf("presence %v, want alice as %s", got, id)
	}
	p1.Close(answered)
	for i := 0; i < 3; i++ { // the next polls, each within the lease
		p := pollSession(t, n, "alice", claim)
		if p.PresenceClient() != id {
			t.Fatalf("poll %d is client %s, want %s", i, p.PresenceClient(), id)
		}
		p.Close(answered)
	}
	if got := clientsOf(t, n, "room:1"); got[id] != "alice" || len(got) != 2 {
		t.Fatalf("presence %v during polls, want alice as %s", got, id)
	}
	deadline := time.Now().Add(5 * time.Second)
	var ev []wire.Frame
	for len(ev) < 2 && time.Now().Before(deadline) {
		ev = append(ev, events(t, w)...)
		time.Sleep(5 * time.Millisecond)
	}
	if len(ev) != 2 || ev[0].Type != "join" || ev[1].Type != "leave" || ev[0].Client != id || ev[1].Client != id {
		t.Fatalf("events %+v, want one join and one leave of %s", ev, id)
	}
	if got := clientsOf(t, n, "room:1"); len(got) != 1 {
		t.Fatalf("presence %v after the lease, want carol only", got)
	}
}

// TestPollPresenceClaims: a claimed id whose entry is another user's is not
// taken over, and a malformed one is ignored: both polls are clients of
// their own.
func TestPollPresenceClaims(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, PollLease: time.Minute})
	a := pollSession(t, n, "alice", "")
	m := pollSession(t, n, "mallory", a.ID())
	if m.ID() == a.ID() {
		t.Fatal("session ids collide")
	}
	if got := clientsOf(t, n, "room:1"); got[a.PresenceClient()] != "alice" || got[PollClientID(m.ID())] != "mallory" || len(got) != 2 {
		t.Fatalf("presence %v: mallory took alice's entry", got)
	}
	for _, bad := range []string{"has space", "x/y", string(make([]byte, 65)), "é"} {
		if ValidPollClient(bad) {
			t.Errorf("%q is accepted as a client id", bad)
		}
		s := mustSession(t, n)
		s.PollPresence(bad)
		if s.PresenceClient() != PollClientID(s.ID()) {
			t.Errorf("claim %q: client %q, want the one its own session id claims", bad, s.PresenceClient())
		}
	}
	if !ValidPollClient(a.ID()) {
		t.Fatalf("a session id %q is refused as a client id", a.ID())
	}
}

// TestPollPresenceListedIDIsNoClaim: every subscriber reads the ids
// presence lists, and anonymous clients all have the user "", so a listed
// id must not be a claim. An anonymous poller that claims another's listed
// id is a client of its own: it neither refreshes the other's entry nor
// ends it.
func TestPollPresenceListedIDIsNoClaim(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, PollLease: time.Hour})
	owner := pollSession(t, n, "", "")
	listed := owner.PresenceClient()
	if listed == owner.ID() || !ValidPollClient(listed) {
		t.Fatalf("listed as %q (session %q): want a valid id other than the claim", listed, owner.ID())
	}
	owner.Close(answered)
	impostor := pollSession(t, n, "", listed)
	if impostor.PresenceClient() == listed {
		t.Fatalf("the impostor claimed the owner's entry %s", listed)
	}
	if got := clientsOf(t, n, "room:1"); len(got) != 2 {
		t.Fatalf("presence %v, want the owner and the impostor apart", got)
	}
	impostor.Close(DisconnectByServer) // a terminal end leaves at once
	if got := clientsOf(t, n, "room:1"); len(got) != 1 {
		t.Fatalf("presence %v after the impostor's end, want the owner's entry %s only", got, listed)
	} else if _, ok := got[listed]; !ok {
		t.Fatalf("presence %v: the impostor's end removed the owner's entry %s", got, listed)
	}
	// The owner's own claim still refreshes it.
	if p := pollSession(t, n, "", owner.ID()); p.PresenceClient() != listed {
		t.Fatalf("the owner's next poll is %s, want %s", p.PresenceClient(), listed)
	}
}

// TestPollPresenceTerminal: a poll that ends with a terminal disconnect
// leaves at once, without waiting for the lease.
func TestPollPresenceTerminal(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, PollLease: time.Hour})
	p := pollSession(t, n, "alice", "")
	p.Close(DisconnectByServer)
	if got := clientsOf(t, n, "room:1"); len(got) != 0 {
		t.Fatalf("presence %v after a terminal disconnect, want none", got)
	}
	// A poll that ends normally stays for the lease.
	q := pollSession(t, n, "alice", "")
	q.Close(answered)
	if got := clientsOf(t, n, "room:1"); len(got) != 1 {
		t.Fatalf("presence %v after a normal poll end, want alice", got)
	}
}

// TestPollPresenceStaleLease: a poll the client gave up on (it aborted and
// polled again) may end after the newer poll. Its lease must not replace
// the newer poll's, which alone can remove the entry: the client still
// leaves.
func TestPollPresenceStaleLease(t *testing.T) {
	n := newTestNode(t, Config{Namespaces: presenceNS, PollLease: 50 * time.Millisecond})
	old := pollSession(t, n, "alice", "")
	id := old.ID()
	newer := pollSession(t, n, "alice", id)
	newer.Close(answered)
	old.Close(answered) // the abandoned poll ends last
	deadline := time.Now().Add(5 * time.Second)
	for len(clientsOf(t, n, "room:1")) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("presence %v: the entry outlived every lease", clientsOf(t, n, "room:1"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// FuzzValidPollClient: a client id a poll may claim is what the server
// hands out (URL-safe base64, as newID) and never longer than 64 bytes, so
// whatever a poll sends, its presence entry's key is bounded and plain.
func FuzzValidPollClient(f *testing.F) {
	for _, s := range []string{"", newID(), "a b", "x/y", "é", strings.Repeat("A", 64), strings.Repeat("A", 65), "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidPollClient(s) {
			return
		}
		if len(s) == 0 || len(s) > maxPollClientLen {
			t.Fatalf("%q accepted: length %d", s, len(s))
		}
		if strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("%q accepted: not URL-safe base64 characters", s)
		}
	})
}
