package auth

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/waterspout/waterspout/session"
)

var quiet = AuthorizerOptions{Logger: slog.New(slog.DiscardHandler)}

// grantTok returns a token maker for sub with the given patterns.
func grantTok(sub string, channels, publish []string) func(*testing.T) string {
	return func(t *testing.T) string { return mint(t, MintConfig{Sub: sub, Channels: channels, Publish: publish}) }
}

func list(ps ...string) []string { return ps }

func TestGrantMatrix(t *testing.T) {
	expiredTok := func(t *testing.T) string {
		return mint(t, MintConfig{Sub: "17", Channels: list("vip:*"), TTL: time.Minute,
			Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	}
	publisherTok := func(t *testing.T) string {
		return mint(t, MintConfig{Sub: "17", Channels: list("vip:*"), Kind: KindPublisher})
	}
	garbage := func(*testing.T) string { return "garbage" }
	const (
		ok        = 0
		needToken = 401
		denied    = 403
	)
	cases := []struct {
		name      string
		conn      func(*testing.T) string // the connection token; nil: anonymous
		subTok    func(*testing.T) string // the subscribe command's token
		anon, pub bool                    // the namespace's Anonymous and ClientPublish
		publish   bool                    // publish instead of subscribe
		ch        string
		want      int
	}{
		// Subscribing, by namespace.
		{name: "anonymous namespace, no token", anon: true, ch: "news", want: ok},
		{name: "closed namespace, no token", ch: "news", want: needToken},
		{name: "closed namespace, token without a grant", conn: grantTok("17", nil, nil), ch: "news", want: denied},
		{name: "anonymous namespace, token without a grant", conn: grantTok("17", nil, nil), anon: true, ch: "news", want: ok},
		// Patterns.
		{name: "exact grant", conn: grantTok("17", list("news"), nil), ch: "news", want: ok},
		{name: "exact grant is exact", conn: grantTok("17", list("news"), nil), ch: "news2", want: denied},
		{name: "exact grant is not a prefix", conn: grantTok("17", list("news"), nil), ch: "new", want: denied},
		{name: "wildcard", conn: grantTok("17", list("orders:*"), nil), ch: "orders:1", want: ok},
		{name: "wildcard, deeper", conn: grantTok("17", list("orders:*"), nil), ch: "orders:1:2", want: ok},
		{name: "wildcard needs one more byte", conn: grantTok("17", list("orders:*"), nil), ch: "orders:", want: denied},
		{name: "wildcard is not its namespace", conn: grantTok("17", list("orders:*"), nil), ch: "orders", want: denied},
		{name: "wildcard prefix is literal", conn: grantTok("17", list("orders:*"), nil), ch: "ordersX:1", want: denied},
		{name: "wildcard without a colon", conn: grantTok("17", list("orders*"), nil), ch: "ordersX:1", want: ok},
		{name: "one of several patterns", conn: grantTok("17", list("a", "b:*", "c"), nil), ch: "b:x", want: ok},
		{name: "bare star", conn: grantTok("ops", list("*"), nil), ch: "anything", want: ok},
		{name: "bare star reaches personal channels", conn: grantTok("ops", list("*"), nil), ch: "user#17", want: ok},
		{name: "publish grant does not subscribe", conn: grantTok("17", nil, list("news")), ch: "news", want: denied},
		// Personal channels.
		{name: "own personal channel", conn: grantTok("17", nil, nil), ch: "user#17", want: ok},
		{name: "personal channel is exact", conn: grantTok("17", nil, nil), ch: "user#170", want: denied},
		{name: "personal channel is not a prefix", conn: grantTok("17", nil, nil), ch: "user#1", want: denied},
		{name: "another user's channel in an anonymous namespace", conn: grantTok("17", nil, nil), anon: true, ch: "user#18", want: denied},
		{name: "personal channel, anonymous session, anonymous namespace", anon: true, ch: "user#17", want: needToken},
		{name: "personal channel granted by pattern", conn: grantTok("admin", list("user#*"), nil), ch: "user#17", want: ok},
		{name: "namespaced channel with user# inside is not personal", anon: true, ch: "room:user#17", want: ok},
		// The subscribe command's own token.
		{name: "subscribe token grants", subTok: grantTok("5", list("vip:*"), nil), ch: "vip:1", want: ok},
		{name: "subscribe token grants its personal channel", subTok: grantTok("5", nil, nil), ch: "user#5", want: ok},
		{name: "subscribe token without the grant", subTok: grantTok("5", list("vip:*"), nil), ch: "gold:1", want: denied},
		{name: "subscribe token adds to the connection's", conn: grantTok("17", list("news"), nil),
			subTok: grantTok("17", list("vip:*"), nil), ch: "vip:1", want: ok},
		{name: "subscribe token without the grant, connection grants", conn: grantTok("17", list("vip:*"), nil),
			subTok: grantTok("17", list("news"), nil), ch: "vip:1", want: ok},
		{name: "subscribe token for another user", conn: grantTok("17", nil, nil),
			subTok: grantTok("18", list("vip:*"), nil), ch: "vip:1", want: denied},
		{name: "subscribe token invalid", subTok: garbage, anon: true, ch: "news", want: needToken},
		{name: "subscribe token expired", subTok: expiredTok, ch: "vip:1", want: needToken},
		{name: "subscribe token is a publisher token", subTok: publisherTok, ch: "vip:1", want: needToken},
		// Publishing.
		{name: "namespace without client publish, even with a grant", conn: grantTok("17", nil, list("chat:*")),
			anon: true, publish: true, ch: "chat:1", want: denied},
		{name: "anonymous publish", anon: true, pub: true, publish: true, ch: "chat:1", want: ok},
		{name: "anonymous publish, not to a personal channel", anon: true, pub: true, publish: true, ch: "user#17", want: needToken},
		{name: "owner does not publish to a personal channel without a grant", conn: grantTok("17", nil, nil),
			anon: true, pub: true, publish: true, ch: "user#17", want: denied},
		{name: "publish grant for a personal channel", conn: grantTok("17", nil, list("user#17")),
			pub: true, publish: true, ch: "user#17", want: ok},
		{name: "publish grant", conn: grantTok("17", nil, list("chat:*")), pub: true, publish: true, ch: "chat:1", want: ok},
		{name: "publish grant, wildcard edge", conn: grantTok("17", nil, list("chat:*")), pub: true, publish: true, ch: "chat", want: denied},
		{name: "closed namespace publish, no token", pub: true, publish: true, ch: "chat:1", want: needToken},
		{name: "subscribe grant does not publish", conn: grantTok("17", list("chat:*"), nil),
			pub: true, publish: true, ch: "chat:1", want: denied},
	}
	v := newVerifier(t, VerifierConfig{})
	a := NewAuthorizer(v, quiet)
	node := newNode(t, a)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, node)
			var conn, subTok string
			if tc.conn != nil {
				conn = tc.conn(t)
			}
			if tc.subTok != nil {
				subTok = tc.subTok(t)
			}
			if err := a.Authenticate(tokenRequest(conn), s); err != nil {
				t.Fatal(err)
			}
			ns := session.Namespace{Anonymous: tc.anon, ClientPublish: tc.pub}
			var err error
			if tc.publish {
				err = a.AuthorizePublish(s, ns, tc.ch)
			} else {
				err = a.AuthorizeSubscribe(s, ns, tc.ch, subTok)
			}
			if got := code(err); got != tc.want {
				t.Fatalf("code = %d (%v), want %d", got, err, tc.want)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	v := newVerifier(t, VerifierConfig{})
	a := NewAuthorizer(v, quiet)
	node := newNode(t, a)
	bearer := func(tok string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/connect/sse?channel=news", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	cases := []struct {
		name     string
		req      func(*testing.T) *http.Request
		want     error // a session.Disconnect, or nil
		wantUser string
	}{
		{"no token", func(*testing.T) *http.Request { return tokenRequest("") }, nil, ""},
		{"query token", func(t *testing.T) *http.Request { return tokenRequest(mint(t, MintConfig{Sub: "17"})) }, nil, "17"},
		{"bearer token", func(t *testing.T) *http.Request { return bearer(mint(t, MintConfig{Sub: "18"})) }, nil, "18"},
		{"basic credentials are not a token", func(*testing.T) *http.Request {
			r := tokenRequest("")
			r.SetBasicAuth("user", "pass")
			return r
		}, nil, ""},
		{"invalid token", func(*testing.T) *http.Request { return tokenRequest("x.y.z") }, session.DisconnectInvalidToken, ""},
		{"expired token", func(t *testing.T) *http.Request {
			return tokenRequest(mint(t, MintConfig{Sub: "17", TTL: time.Minute, Now: func() time.Time { return time.Now().Add(-time.Hour) }}))
		}, session.DisconnectTokenExpired, ""},
		{"publisher token", func(t *testing.T) *http.Request {
			return tokenRequest(mint(t, MintConfig{Sub: "backend", Kind: KindPublisher}))
		}, session.DisconnectInvalidToken, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, node)
			err := a.Authenticate(tc.req(t), s)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if s.User() != tc.wantUser {
				t.Fatalf("user = %q, want %q", s.User(), tc.wantUser)
			}
			if (a.Claims(s) != nil) != (tc.wantUser != "") {
				t.Fatalf("claims = %+v", a.Claims(s))
			}
		})
	}
	t.Run("server without keys", func(t *testing.T) {
		a := NewAuthorizer(nil, quiet)
		s := newSession(t, node)
		if err := a.Authenticate(tokenRequest(mint(t, MintConfig{Sub: "17"})), s); !errors.Is(err, session.DisconnectInvalidToken) {
			t.Fatalf("err = %v", err)
		}
		if err := a.Authenticate(tokenRequest(""), s); err != nil {
			t.Fatal(err)
		}
		if err := a.AuthorizeSubscribe(s, session.Namespace{Anonymous: true}, "user#17", ""); code(err) != 401 {
			t.Fatalf("personal channel without keys: %v", err)
		}
		if err := a.Refresh(s, "x"); code(err) != 400 {
			t.Fatalf("refresh without keys: %v", err)
		}
	})
}

// TestCommands runs the grants through a node, as a WebSocket client sees
// them: error frames with codes, `auth` upgrading an anonymous session.
func TestCommands(t *testing.T) {
	a := NewAuthorizer(newVerifier(t, VerifierConfig{}), quiet)
	node := newNode(t, a)
	s := newSession(t, node)
	ctx := t.Context()
	run := func(cmd string) map[string]any {
		t.Helper()
		if err := s.HandleCommand(ctx, []byte(cmd)); err != nil {
			t.Fatal(err)
		}
		items, err := s.Next(ctx, time.Minute, nil)
		if err != nil || len(items) != 1 {
			t.Fatalf("frames %d, err %v", len(items), err)
		}
		var f map[string]any
		if err := json.Unmarshal(items[0].Frame, &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tok := mint(t, MintConfig{Sub: "17", Publish: list("chat:*")})
	steps := []struct {
		cmd      string
		wantType string
		wantCode float64
	}{
		{`{"type":"subscribe","id":1,"channel":"user#17"}`, "error", 401},
		{`{"type":"auth","id":2,"token":"garbage"}`, "error", 401},
		{`{"type":"auth","id":3,"token":"` + tok + `"}`, "reply", 0},
		{`{"type":"subscribe","id":4,"channel":"user#17"}`, "subscribed", 0},
		{`{"type":"subscribe","id":5,"channel":"user#18"}`, "error", 403},
		{`{"type":"auth","id":6,"token":"` + mint(t, MintConfig{Sub: "18"}) + `"}`, "error", 403},
		{`{"type":"publish","id":7,"channel":"chat:1","data":1}`, "error", 403}, // the default namespace has no client publish
	}
	for _, st := range steps {
		f := run(st.cmd)
		if f["type"] != st.wantType || st.wantCode != 0 && f["code"] != st.wantCode {
			t.Fatalf("%s: got %v", st.cmd, f)
		}
	}
	if s.User() != "17" {
		t.Fatalf("user = %q", s.User())
	}
}

func TestRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newVerifier(t, VerifierConfig{Leeway: -1})
		a := NewAuthorizer(v, quiet)
		node := newNode(t, a)
		start := time.Now()

		s := newSession(t, node)
		if err := a.Authenticate(tokenRequest(mint(t, MintConfig{Sub: "17", TTL: 10 * time.Second})), s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if err := a.Refresh(s, mint(t, MintConfig{Sub: "17", Channels: list("news"), TTL: time.Minute})); err != nil {
			t.Fatal(err)
		}
		if c := a.Claims(s); c == nil || len(c.Channels) != 1 {
			t.Fatalf("claims after refresh = %+v", c)
		}
		time.Sleep(30 * time.Second) // well past the first token's expiry
		synctest.Wait()
		if s.Done() {
			t.Fatalf("session ended at the first token's expiry: %v", s.Reason())
		}
		_, err := s.Next(t.Context(), time.Hour, nil)
		if !errors.Is(err, session.DisconnectTokenExpired) {
			t.Fatalf("Next = %v, want token expired", err)
		}
		if got := time.Since(start); got != 65*time.Second {
			t.Fatalf("session ended after %v, want the second token's expiry (65s)", got)
		}

		// Refusals leave the grant and its timer as they were.
		s2 := newSession(t, node)
		if err := a.Authenticate(tokenRequest(mint(t, MintConfig{Sub: "17", TTL: 10 * time.Second})), s2); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			token string
			want  *session.Error
		}{
			{mint(t, MintConfig{Sub: "18", TTL: time.Hour}), ErrOtherSubject},
			{"garbage", ErrInvalidToken},
			{mint(t, MintConfig{Sub: "17", TTL: time.Minute, Now: func() time.Time { return time.Now().Add(-time.Hour) }}), ErrTokenExpired},
			{mint(t, MintConfig{Sub: "17", TTL: time.Hour, Kind: KindPublisher}), ErrInvalidToken},
			{"", ErrTokenRequired},
		} {
			if err := a.Refresh(s2, tc.token); err != tc.want {
				t.Errorf("Refresh = %v, want %v", err, tc.want)
			}
		}
		if s2.User() != "17" {
			t.Fatalf("user = %q", s2.User())
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if s2.Reason() != session.DisconnectTokenExpired {
			t.Fatalf("reason = %v, want token expired at the first deadline", s2.Reason())
		}
		// An expired session cannot be revived.
		if err := a.Refresh(s2, mint(t, MintConfig{Sub: "17"})); err == nil {
			t.Fatal("refreshed an ended session")
		}
	})
}

func TestRefreshUpgradesAnonymous(t *testing.T) {
	a := NewAuthorizer(newVerifier(t, VerifierConfig{}), quiet)
	s := newSession(t, newNode(t, a))
	if err := a.Authenticate(tokenRequest(""), s); err != nil {
		t.Fatal(err)
	}
	if err := a.Refresh(s, mint(t, MintConfig{Sub: "17"})); err != nil {
		t.Fatal(err)
	}
	if s.User() != "17" || a.Claims(s) == nil {
		t.Fatalf("user %q, claims %+v", s.User(), a.Claims(s))
	}
	if err := a.Refresh(s, mint(t, MintConfig{Sub: "18"})); err != ErrOtherSubject {
		t.Fatalf("second subject: %v", err)
	}
}

// TestExpiry is the live-connection case: a token that runs out ends the
// session with 3007, which the writer sees from Next.
func TestExpiry(t *testing.T) {
	for _, leeway := range []time.Duration{-1, 0} {
		t.Run("leeway "+time.Duration(max(leeway, 0)).String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				v := newVerifier(t, VerifierConfig{Leeway: leeway})
				a := NewAuthorizer(v, quiet)
				s := newSession(t, newNode(t, a))
				start := time.Now()
				if err := a.Authenticate(tokenRequest(mint(t, MintConfig{Sub: "17", TTL: 2 * time.Second})), s); err != nil {
					t.Fatal(err)
				}
				var items []session.Item
				var err error
				for err == nil { // heartbeats (empty batches) until the disconnect
					items, err = s.Next(t.Context(), time.Second, items)
				}
				if !errors.Is(err, session.DisconnectTokenExpired) {
					t.Fatalf("Next = %v, want token expired", err)
				}
				want := 2 * time.Second
				if leeway == 0 {
					want += DefaultLeeway
				}
				if got := time.Since(start); got != want {
					t.Fatalf("expired after %v, want %v", got, want)
				}
				if a.tracked() != 0 {
					t.Fatalf("%d grants left", a.tracked())
				}
				// Between the deadline and Close, commands are refused.
				if err := a.AuthorizeSubscribe(s, session.Namespace{Anonymous: true}, "user#17", ""); err == nil {
					t.Fatal("expired session subscribed to its personal channel")
				}
			})
		})
	}
}

func TestExpiredGrantBeforeTimer(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	v := newVerifier(t, VerifierConfig{Leeway: -1, Now: clock})
	a := NewAuthorizer(v, quiet)
	s := newSession(t, newNode(t, a))
	tok := mint(t, MintConfig{Sub: "17", Publish: list("chat:*"), TTL: time.Hour, Now: clock})
	if err := a.Authenticate(tokenRequest(tok), s); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour) // the clock jumps; the real timer has not fired
	ns := session.Namespace{ClientPublish: true}
	if err := a.AuthorizeSubscribe(s, ns, "user#17", ""); err != ErrTokenExpired {
		t.Errorf("subscribe = %v", err)
	}
	if err := a.AuthorizePublish(s, ns, "chat:1"); err != ErrTokenExpired {
		t.Errorf("publish = %v", err)
	}
}

func TestForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := NewAuthorizer(newVerifier(t, VerifierConfig{}), quiet)
		s := newSession(t, newNode(t, a))
		if err := a.Authenticate(tokenRequest(mint(t, MintConfig{Sub: "17", TTL: time.Second})), s); err != nil {
			t.Fatal(err)
		}
		a.Forget(s)
		a.Forget(s)
		time.Sleep(time.Minute)
		synctest.Wait()
		if s.Done() || a.tracked() != 0 {
			t.Fatalf("done %v, %d grants after Forget", s.Done(), a.tracked())
		}
	})
}

// TestSweep checks that closed sessions' grants go without Forget: every
// new grant looks at the two oldest.
func TestSweep(t *testing.T) {
	a := NewAuthorizer(newVerifier(t, VerifierConfig{}), quiet)
	node := newNode(t, a)
	tok := mint(t, MintConfig{Sub: "17"})
	connect := func() *session.Session {
		s, err := node.NewSession("test")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(session.Disconnect{}) })
		if err := a.Authenticate(tokenRequest(tok), s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for range 100 { // long-poll: a session per request, closed at once
		connect().Close(session.Disconnect{Reason: "poll answered"})
	}
	if a.tracked() > 100 {
		t.Fatalf("%d grants for 100 sessions", a.tracked())
	}
	for range 60 {
		connect() // these stay open
	}
	// 60 new grants looked at 120 queue entries: the 100 closed ones (minus
	// what the first 100 grants swept among themselves) and the open ones.
	if got := a.tracked(); got != 60 {
		t.Fatalf("%d grants for 60 open sessions", got)
	}
	for range 1000 {
		connect().Close(session.Disconnect{})
	}
	if got := a.tracked(); got > 2*60+2 {
		t.Fatalf("%d grants for 60 open sessions", got)
	}
	a.mu.Lock()
	queued := len(a.queue) - a.head
	a.mu.Unlock()
	if queued > 2*60+2 {
		t.Fatalf("sweep queue holds %d sessions for 60 open ones", queued)
	}
}

// TestRefusalsNeverLogTokens checks the debug log of every refusal path.
func TestRefusalsNeverLogTokens(t *testing.T) {
	var buf strings.Builder
	a := NewAuthorizer(newVerifier(t, VerifierConfig{}), AuthorizerOptions{
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	s := newSession(t, newNode(t, a))
	bad := mint(t, MintConfig{Sub: "17", Key: otherSecret})
	_ = a.Authenticate(tokenRequest(bad), s)
	_ = a.Refresh(s, bad)
	_ = a.AuthorizeSubscribe(s, session.Namespace{}, "news", bad)
	if buf.Len() == 0 {
		t.Fatal("refusals were not logged")
	}
	for _, part := range strings.Split(bad, ".") {
		if strings.Contains(buf.String(), part) {
			t.Fatalf("log holds part of the token:\n%s", buf.String())
		}
	}
}

func TestAuthenticateClosedSession(t *testing.T) {
	a := NewAuthorizer(newVerifier(t, VerifierConfig{}), quiet)
	s := newSession(t, newNode(t, a))
	s.Close(session.Disconnect{Reason: "gone"})
	if err := a.Authenticate(tokenRequest(mint(t, MintConfig{Sub: "17"})), s); err != nil {
		t.Fatal(err)
	}
	if a.tracked() != 0 { // the grant's own sweep saw the session had ended
		t.Fatalf("%d grants for a closed session", a.tracked())
	}
}

// TestCommandTokenFailuresLimited: a session's `auth` and `subscribe`
// commands may carry commandFailBurst tokens that fail verification, then
// one every commandFailEvery; past that a token is refused unchecked with
// ErrTokenFailures. Good tokens give their check back, and other sessions
// are not touched.
func TestCommandTokenFailuresLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := NewAuthorizer(newVerifier(t, VerifierConfig{}), quiet)
		node := newNode(t, a)
		s, other := newSession(t, node), newSession(t, node)
		for i := range 4 * commandFailBurst {
			if err := a.Refresh(s, mint(t, MintConfig{Sub: "17", TTL: time.Hour})); err != nil {
				t.Fatalf("good token #%d: %v", i+1, err)
			}
		}
		ns := session.Namespace{Name: "orders"}
		for i := range commandFailBurst {
			var err error
			if i%2 == 0 {
				err = a.Refresh(s, "garbage")
			} else {
				err = a.AuthorizeSubscribe(s, ns, "orders:1", "garbage")
			}
			if err != ErrInvalidToken {
				t.Fatalf("bad token #%d: %v, want invalid", i+1, err)
			}
		}
		good := mint(t, MintConfig{Sub: "17", Channels: list("orders:*"), TTL: time.Hour})
		for _, err := range []error{
			a.Refresh(s, "garbage"), a.Refresh(s, good), a.AuthorizeSubscribe(s, ns, "orders:1", good),
		} {
			if err != ErrTokenFailures {
				t.Fatalf("after %d failures: %v, want %v", commandFailBurst, err, ErrTokenFailures)
			}
		}
		if err := a.Refresh(other, good); err != nil {
			t.Fatalf("another session: %v", err)
		}
		time.Sleep(commandFailEvery)
		if err := a.Refresh(s, good); err != nil {
			t.Fatalf("after %v: %v", commandFailEvery, err)
		}
	})
}
