package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/session"
)

// presenceServer is a secured server with a namespace "room" that keeps
// presence and sends join/leave, and a namespace "plain" that does not.
func presenceServer(t *testing.T) *testServer {
	return newTestServer(t, then(secure(t), func(c *Config) {
		c.Namespaces = append(c.Namespaces,
			session.Namespace{Name: "room", HistorySize: 10, HistoryTTL: time.Minute, Anonymous: true, Presence: true, JoinLeave: true},
			session.Namespace{Name: "plain", Anonymous: true})
	}))
}

// event reads frames until one of the types.
func (c *wsClient) event(types ...string) frame {
	c.t.Helper()
	for {
		if f := c.next(); slices.Contains(types, f.Type) {
			return f
		}
	}
}

func apiGet(t *testing.T, ts *testServer, path string, v any) answer {
	t.Helper()
	a := do(t, http.MethodGet, ts.URL+path, "", "Authorization", "Bearer "+testAPIKey)
	if a.status == http.StatusOK && v != nil {
		a.decode(t, v)
	}
	return a
}

// TestPresenceAPIJoinLeave is the scenario over WebSocket: two
// clients are listed by /api/presence; a third one's subscribe is a join to
// both, /api/channels counts 3, its close is a leave and presence is 2 again.
func TestPresenceAPIJoinLeave(t *testing.T) {
	ts := presenceServer(t)
	a, _ := dialWSToken(t, ts.URL, connToken(t, "alice", nil, nil, time.Hour))
	b, _ := dialWSToken(t, ts.URL, "")
	a.subscribe("room:1")
	b.subscribe("room:1")
	var p presenceAnswer
	apiGet(t, ts, "/api/presence?channel=room:1", &p)
	if p.Channel != "room:1" || len(p.Clients) != 2 {
		t.Fatalf("presence %+v, want 2 clients", p)
	}
	users := map[string]bool{}
	for _, c := range p.Clients {
		users[c.User] = true
	}
	if !users["alice"] || !users[""] {
		t.Fatalf("presence users %v, want alice and anonymous", users)
	}

	c, _ := dialWSToken(t, ts.URL, connToken(t, "carol", nil, nil, time.Hour))
	c.subscribe("room:1")
	var cid string
	for _, w := range []*wsClient{a, b} {
		j := w.event("join")
		if j.User == "" { // a heard b's join before
			j = w.event("join")
		}
		if j.Channel != "room:1" || j.User != "carol" || j.Client == "" {
			t.Fatalf("join %+v", j)
		}
		cid = j.Client
	}
	var chans struct {
		Channels []session.ChannelCount `json:"channels"`
	}
	apiGet(t, ts, "/api/channels?prefix=room:", &chans)
	if len(chans.Channels) != 1 || chans.Channels[0] != (session.ChannelCount{Channel: "room:1", Subscribers: 3}) {
		t.Fatalf("channels %+v, want room:1 with 3", chans)
	}
	c.Conn.Close()
	for _, w := range []*wsClient{a, b} {
		l := w.event("leave")
		if l.Client != cid || l.User != "carol" {
			t.Fatalf("leave %+v, want carol's (%s)", l, cid)
		}
	}
	var st struct {
		Channel string `json:"channel"`
		Clients int    `json:"clients"`
		Users   int    `json:"users"`
	}
	apiGet(t, ts, "/api/presence/stats?channel=room:1", &st)
	if st.Channel != "room:1" || st.Clients != 2 || st.Users != 2 {
		t.Fatalf("stats %+v, want 2 clients and 2 users", st)
	}
	apiGet(t, ts, "/api/presence?channel=room:1", &p)
	if len(p.Clients) != 2 {
		t.Fatalf("presence after the leave: %+v", p)
	}
}

func TestPresenceAPIErrors(t *testing.T) {
	ts := presenceServer(t)
	tests := []struct {
		name, method, path, body string
		auth                     bool
		want                     int
	}{
		{"no credentials", "GET", "/api/presence?channel=room:1", "", false, 401},
		{"no presence in the namespace", "GET", "/api/presence?channel=plain:1", "", true, 403},
		{"bad channel", "GET", "/api/presence/stats?channel=", "", true, 400},
		{"long prefix", "GET", "/api/channels?prefix=" + strings.Repeat("x", 300), "", true, 400},
		{"disconnect without user", "POST", "/api/disconnect", `{}`, true, 400},
		{"disconnect misspelt field", "POST", "/api/disconnect", `{"user":"a","clinet":"x"}`, true, 400},
		{"disconnect with a channel", "POST", "/api/disconnect", `{"user":"a","channel":"x"}`, true, 400},
		{"unsubscribe without channel", "POST", "/api/unsubscribe", `{"user":"a"}`, true, 400},
		{"unsubscribe body too large", "POST", "/api/unsubscribe", `{"user":"` + strings.Repeat("a", 5000) + `"}`, true, 413},
		{"disconnect as a form", "POST", "/api/disconnect", `user=a`, true, 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := []string{}
			if tt.auth {
				h = append(h, "Authorization", "Bearer "+testAPIKey)
			}
			if tt.method == "POST" {
				ct := jsonType
				if strings.HasPrefix(tt.body, "user=") {
					ct = formType
				}
				h = append(h, "Content-Type", ct)
			}
			a := do(t, tt.method, ts.URL+tt.path, tt.body, h...)
			if a.status != tt.want {
				t.Fatalf("status %d (%s), want %d", a.status, a.body, tt.want)
			}
			a.apiErr(t)
		})
	}
}

// TestDisconnectAPI closes every connection of a user, on WebSocket, SSE
// and SockJS, with the terminal code 3504, and nobody else's.
func TestDisconnectAPI(t *testing.T) {
	ts := presenceServer(t)
	alice := connToken(t, "alice", nil, nil, time.Hour)
	ws1, _ := dialWSToken(t, ts.URL, alice)
	ws1.subscribe("room:1")
	bob, _ := dialWSToken(t, ts.URL, connToken(t, "bob", nil, nil, time.Hour))
	bob.subscribe("room:1")
	sse := openSSEStream(t, ts.URL, withToken(url.Values{"channel": {"room:1"}}, alice))
	if f := sse.next(); f.Type != "hello" {
		t.Fatalf("sse first frame %+v", f)
	}
	sj, _ := dialSockJS(t, ts.URL, alice)

	a := postJSON(t, ts.URL+"/api/disconnect", `{"user":"alice"}`, "Authorization", "Bearer "+testAPIKey)
	if a.status != http.StatusOK {
		t.Fatalf("disconnect: %d %s", a.status, a.body)
	}
	if f := ws1.event("disconnect"); f.Code != session.DisconnectByServer.Code {
		t.Fatalf("ws: %+v, want code 3504", f)
	}
	for f := sse.next(); ; f = sse.next() {
		if f.Type == "disconnect" {
			if f.Code != 3504 || f.Reconnect {
				t.Fatalf("sse: %+v, want terminal 3504", f)
			}
			break
		}
	}
	for f := sj.next(); ; f = sj.next() {
		if f.Type == "disconnect" {
			if f.Code != 3504 {
				t.Fatalf("sockjs: %+v", f)
			}
			break
		}
	}
	// Bob is still served: his next frame is a publication.
	postJSON(t, ts.URL+"/api/publish", `{"channel":"room:1","data":1}`, "Authorization", "Bearer "+testAPIKey)
	if f := bob.event("message", "disconnect"); f.Type != "message" {
		t.Fatalf("bob got %+v", f)
	}
	// A publisher token may not disconnect.
	pub := connToken(t, "backend", nil, []string{"room:*"}, time.Hour)
	if a := postJSON(t, ts.URL+"/api/disconnect", `{"user":"bob"}`, "Authorization", "Bearer "+pub); a.status != http.StatusForbidden && a.status != http.StatusUnauthorized {
		t.Fatalf("disconnect with a publisher token: %d %s", a.status, a.body)
	}
}

// TestUnsubscribeAPI ends a user's subscription with an unsubscribed frame.
func TestUnsubscribeAPI(t *testing.T) {
	ts := presenceServer(t)
	a, _ := dialWSToken(t, ts.URL, connToken(t, "alice", nil, nil, time.Hour))
	a.subscribe("room:1")
	a.subscribe("plain:1")
	r := postJSON(t, ts.URL+"/api/unsubscribe", `{"user":"alice","channel":"plain:1"}`, "Authorization", "Bearer "+testAPIKey)
	if r.status != http.StatusOK {
		t.Fatalf("unsubscribe: %d %s", r.status, r.body)
	}
	if f := a.event("unsubscribed"); f.Channel != "plain:1" || f.Code != session.UnsubscribedByServer {
		t.Fatalf("frame %+v", f)
	}
	postJSON(t, ts.URL+"/api/publish", `{"channel":"plain:1","data":1}`, "Authorization", "Bearer "+testAPIKey)
	postJSON(t, ts.URL+"/api/publish", `{"channel":"room:1","data":2}`, "Authorization", "Bearer "+testAPIKey)
	f := a.next()
	for f.Type != "message" {
		f = a.next()
	}
	if f.Channel != "room:1" {
		t.Fatalf("a publication of %s reached the unsubscribed client", f.Channel)
	}
}

// TestPresenceConfig reads the presence settings from a config file and
// refuses what the node could not serve.
func TestPresenceConfig(t *testing.T) {
	var c Config
	err := json.Unmarshal([]byte(`{"presence":{"maxClients":50,"joinLeaveLimit":10,"listLimit":20,"pollLease":"40s"},
		"namespaces":[{"name":"room","anonymous":true,"presence":true,"joinLeave":true}]}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Presence != (PresenceLimits{50, 10, 20, 40 * time.Second}) || !c.Namespaces[0].Presence || !c.Namespaces[0].JoinLeave {
		t.Fatalf("decoded %+v %+v", c.Presence, c.Namespaces)
	}
	out, _ := json.Marshal(c)
	if !strings.Contains(string(out), `"presence":true,"joinLeave":true`) || !strings.Contains(string(out), `"pollLease":"40s"`) {
		t.Fatalf("the namespace's presence or the poll lease is lost on the way out: %s", out)
	}
	// Unset, the lease follows the poll timeout.
	if got := (PresenceLimits{}).pollLease(25 * time.Second); got != 35*time.Second {
		t.Fatalf("default poll lease %v, want 35s", got)
	}
	if err := json.Unmarshal([]byte(`{"presence":{"pollLease":"soon"}}`), &Config{}); err == nil {
		t.Fatal("a malformed poll lease was accepted")
	}
	if err := json.Unmarshal([]byte(`{"presence":{"pollLeas":"1s"}}`), &Config{}); err == nil {
		t.Fatal("a misspelt presence field was accepted")
	}
	c = Config{Presence: PresenceLimits{MaxClients: -1}}
	if err := c.Validate(); err == nil {
		t.Fatal("negative presence limit accepted")
	}
	_, err = New(Config{Addr: "127.0.0.1:0", Namespaces: []session.Namespace{{Name: "x", JoinLeave: true}}})
	if err == nil || !strings.Contains(err.Error(), "joinLeave needs presence") {
		t.Fatalf("joinLeave without presence: %v", err)
	}
}

// TestDecodeControlInvalidText refuses a user that is not valid UTF-8
// text: encoding/json would decode both to U+FFFD, and the order would then
// reach a different user, the one named "\uFFFD".
func TestDecodeControlInvalidText(t *testing.T) {
	for _, tt := range []struct {
		body        string
		unsubscribe bool
	}{
		{`{"user":"\uD800"}`, false},
		{"{\"user\":\"\xff\"}", false},
		{`{"user":"\uD800","channel":"room:1"}`, true},
		{"{\"user\":\"a\xc3\",\"channel\":\"room:1\"}", true},
	} {
		_, err := decodeControl(jsonType, []byte(tt.body), tt.unsubscribe)
		var e *session.Error
		if !errors.As(err, &e) || e.Code != http.StatusBadRequest || !strings.Contains(e.Reason, "field user is not valid UTF-8") {
			t.Errorf("decodeControl(%q) = %v, want a 400 naming the user field", tt.body, err)
		}
	}
	if _, err := decodeControl(jsonType, []byte(`{"user":"\u00e9l\u00e8ve"}`), false); err != nil {
		t.Errorf("valid escapes refused: %v", err)
	}
}
