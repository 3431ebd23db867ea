package conformance

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

// TestConformancePresence runs the presence, join/leave and server API
// scenarios against every transport.
func TestConformancePresence(t *testing.T) {
	runScenarios(t, []scenario{
		{"presence lists and join/leave reach the client", scenarioJoinLeave},
		{"disconnect by the server is terminal", scenarioServerDisconnect},
		{"unsubscribe by the server ends the subscription", scenarioServerUnsubscribe},
	})
}

// newPresenceEnv is an env whose namespace "room" keeps presence and sends
// join/leave; every session is given, at its first subscribe, the user last
// passed to setUser (SockJS reads no credentials before its first command,
// so the Authorizer is where every transport can be given a user).
func newPresenceEnv(t *testing.T) (e *env, setUser func(string)) {
	return newPresenceEnvLease(t, 0)
}

// newPresenceEnvLease is newPresenceEnv with a poll lease (0: the default).
func newPresenceEnvLease(t *testing.T, lease time.Duration) (e *env, setUser func(string)) {
	a := &userAuthorizer{}
	a.user.Store("")
	e = newEnvFor(t, session.Config{
		Limits:     testLimits,
		Namespaces: []session.Namespace{{Name: "room", Anonymous: true, Presence: true, JoinLeave: true}},
		Authorizer: a,
		PollLease:  lease,
	}, nil)
	return e, func(u string) { a.user.Store(u) }
}

type userAuthorizer struct{ user atomic.Value }

func (a *userAuthorizer) AuthorizeSubscribe(s *session.Session, _ session.Namespace, _, _ string) error {
	if s.User() == "" {
		s.SetUser(a.user.Load().(string))
	}
	return nil
}

func (a *userAuthorizer) AuthorizePublish(*session.Session, session.Namespace, string) error {
	return nil
}

// await is until with an overall deadline: heartbeats keep coming, so
// until alone would wait forever for a frame that never does.
func await(t *testing.T, c client, typ string) frame {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		f, err := c.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for %q: %v", typ, err)
		}
		if f.Type == typ {
			return f
		}
	}
	t.Fatalf("no %q frame within 10 s", typ)
	return frame{}
}

// waitSubscribers waits until ch has n subscribers on the node: a
// long-poll client has one only while a poll is held.
func (e *env) waitSubscribers(ch string, n int) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, _, _ := e.node.Channels(context.Background(), ch)
		got := 0
		for _, c := range list {
			if c.Channel == ch {
				got = c.Subscribers
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s has %d subscribers, want %d", ch, got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func scenarioJoinLeave(t *testing.T, tc transportCase) {
	e, setUser := newPresenceEnv(t)
	setUser("alice")
	obs := mustDial(t, tc, e, []string{"room:1"}, nil)
	hello := await(t, obs, "hello")
	await(t, obs, "subscribed")
	e.waitSubscribers("room:1", 1)
	list, err := e.node.Presence(context.Background(), "room:1")
	if err != nil {
		t.Fatal(err)
	}
	// Every transport is listed: a streaming one under its hello's
	// session, a long-poll client under its first poll's hello's client,
	// which is not the session its polls claim the entry with
	// (docs/PROTOCOL.md).
	want := hello.Session
	if !tc.streaming {
		want = hello.Client
		if want == "" || want == hello.Session {
			t.Fatalf("hello %+v: want the listed id in client, apart from the session", hello)
		}
	} else if hello.Client != "" {
		t.Fatalf("hello %+v: client is only for long-poll clients", hello)
	}
	if len(list) != 1 || list[0].User != "alice" || list[0].Client != want {
		t.Fatalf("presence %+v, want one entry for alice, client %q", list, want)
	}

	joiner, err := e.node.NewSession("test")
	if err != nil {
		t.Fatal(err)
	}
	joiner.SetUser("carol")
	if err := joiner.Subscribe(context.Background(), session.SubscribeRequest{Channel: "room:1"}); err != nil {
		t.Fatal(err)
	}
	if f := await(t, obs, "join"); f.Channel != "room:1" || f.Client != joiner.ID() || f.User != "carol" {
		t.Fatalf("join %+v, want carol's", f)
	}
	e.waitSubscribers("room:1", 2) // a poll client is holding its next poll
	joiner.Close(session.ClosedByClient)
	if f := await(t, obs, "leave"); f.Client != joiner.ID() || f.User != "carol" || f.Offset != 0 {
		t.Fatalf("leave %+v, want carol's, without an offset", f)
	}
}

func scenarioServerDisconnect(t *testing.T, tc transportCase) {
	e, setUser := newPresenceEnv(t)
	setUser("alice")
	c := mustDial(t, tc, e, []string{"news"}, nil)
	await(t, c, "subscribed")
	e.waitSubscribers("news", 1)
	if err := e.node.Disconnect(context.Background(), "alice", ""); err != nil {
		t.Fatal(err)
	}
	f := await(t, c, "disconnect")
	if f.Code != session.DisconnectByServer.Code || f.Reconnect {
		t.Fatalf("disconnect %+v, want terminal %d", f, session.DisconnectByServer.Code)
	}
}

func scenarioServerUnsubscribe(t *testing.T, tc transportCase) {
	e, setUser := newPresenceEnv(t)
	setUser("alice")
	c := mustDial(t, tc, e, []string{"news", "room:1"}, nil)
	// Both subscriptions in place, not only in the hub: a publication
	// before room:1's subscribed frame is behind the position that frame
	// gives, so the client is rightly not sent it (room keeps no history).
	// A long-poll client is reached only while a poll is held, hence the
	// wait for the hub's subscribers too.
	await(t, c, "subscribed")
	await(t, c, "subscribed")
	e.waitSubscribers("news", 1)
	e.waitSubscribers("room:1", 1)
	if err := e.node.UnsubscribeUser(context.Background(), "alice", "news"); err != nil {
		t.Fatal(err)
	}
	f := await(t, c, "unsubscribed")
	if f.Channel != "news" || f.Code != session.UnsubscribedByServer {
		t.Fatalf("unsubscribed %+v, want news with %d", f, session.UnsubscribedByServer)
	}
	if !tc.streaming {
		return // the next poll names its channels again; the client drops news
	}
	e.publish("news", 1, 1)
	e.publish("room:1", 1, 1)
	for {
		f := await(t, c, "message")
		if f.Channel == "news" {
			t.Fatal("a publication of news reached the unsubscribed session")
		}
		if f.Channel == "room:1" {
			return
		}
	}
}

// TestConformancePollPresence: a long-poll or JSONP client is one presence
// entry across its polls. It joins once, stays listed while it polls, and
// leaves once its lease runs out after it stops polling. A WebSocket client
// watches the join/leave frames.
func TestConformancePollPresence(t *testing.T) {
	for _, tc := range transportCases() {
		if tc.streaming {
			continue // one session per client: TestConformancePresence
		}
		t.Run(tc.name, func(t *testing.T) {
			const lease = 300 * time.Millisecond
			e, setUser := newPresenceEnvLease(t, lease)
			setUser("carol")
			obs := mustDial(t, transportCases()[0], e, []string{"room:1"}, nil) // ws
			await(t, obs, "subscribed")
			e.waitSubscribers("room:1", 1)

			setUser("alice")
			poller := mustDial(t, tc, e, []string{"room:1"}, nil)
			// The poller is listed under the hello's client; it claims
			// the entry with the hello's session on its later polls.
			id := await(t, poller, "hello").Client
			await(t, poller, "subscribed")
			if f := await(t, obs, "join"); f.Client != id || f.User != "alice" {
				t.Fatalf("join %+v, want alice as %q", f, id)
			}
			// Several polls: each message answers one, and the next poll
			// (with the hello's session as client=) refreshes the entry.
			for i := 1; i <= 4; i++ {
				// The namespace keeps no history: publish while a poll is held.
				e.waitSubscribers("room:1", 2)
				e.publish("room:1", i, i)
				if f := await(t, poller, "message"); string(f.Data) != fmt.Sprint(i) {
					t.Fatalf("poller got %s, want %d", f.Data, i)
				}
			}
			// The watcher sees the four messages and no leave or join in
			// between: a poll's end closed its session before the answer
			// went out, so any leave or join it caused precedes the next
			// publication.
			for i := 1; i <= 4; {
				f, err := obs.Next(5 * time.Second)
				if err != nil {
					t.Fatal(err)
				}
				switch f.Type {
				case "join", "leave":
					t.Fatalf("the poller's polls caused a %s: %+v", f.Type, f)
				case "message":
					i++
				}
			}
			list, err := e.node.Presence(context.Background(), "room:1")
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || !hasClient(list, id, "alice") {
				t.Fatalf("presence %+v, want carol and alice as %q", list, id)
			}

			poller.Close() // stops polling: the lease runs out
			if f := await(t, obs, "leave"); f.Client != id || f.User != "alice" {
				t.Fatalf("leave %+v, want alice as %q", f, id)
			}
			list, err = e.node.Presence(context.Background(), "room:1")
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || hasClient(list, id, "alice") {
				t.Fatalf("presence %+v after the lease, want carol only", list)
			}
		})
	}
}

func hasClient(list []session.ClientInfo, client, user string) bool {
	for _, c := range list {
		if c.Client == client && c.User == user {
			return true
		}
	}
	return false
}

// TestConformancePollDisconnectBetweenPolls: a disconnect order that comes
// while a long-poll or JSONP client is between two polls (it has no session
// then) ends its next poll with the terminal 3504, as it ends a held one.
func TestConformancePollDisconnectBetweenPolls(t *testing.T) {
	for _, tc := range transportCases() {
		if tc.streaming {
			continue // a streaming client is reached in its session: TestConformancePresence
		}
		t.Run(tc.name, func(t *testing.T) {
			e, setUser := newPresenceEnv(t)
			setUser("alice")
			callback := ""
			if tc.name == "jsonp" {
				callback = "cb"
			}
			poll := func(q url.Values) wire.PollAnswer {
				t.Helper()
				q.Set("channel", "news")
				if callback != "" {
					q.Set("callback", callback)
				}
				return wiretest.PollOnce(context.Background(), t, nil, e.srv.URL+"/connect/poll", q)
			}
			first := poll(url.Values{})
			claim := first.Messages[0].Session
			// Answered: the client is between two polls when the order comes.
			if err := e.node.Disconnect(context.Background(), "alice", ""); err != nil {
				t.Fatal(err)
			}
			next := poll(url.Values{"cursor": {*first.Cursor}, "client": {claim}})
			var last wire.Frame
			if n := len(next.Messages); n > 0 {
				last = next.Messages[n-1]
			}
			if last.Type != "disconnect" || last.Code != session.DisconnectByServer.Code || last.Reconnect {
				t.Fatalf("next poll answered %+v, want the terminal disconnect %d", next.Messages, session.DisconnectByServer.Code)
			}
			// A client that connects again is not affected.
			if again := poll(url.Values{}); again.Messages[0].Type != "hello" {
				t.Fatalf("a new first poll answered %+v", again.Messages)
			}
		})
	}
}
