package server

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/server/auth"
	"github.com/waterspout/waterspout/server/auth/authtest"
	"github.com/waterspout/waterspout/session"
)

// Key material is generated at test time (package authtest); no private
// key is committed.
var (
	testSecret  = []byte("server-test-secret-0123456789-abcdefghij")
	otherSecret = []byte("another-secret-0123456789-abcdefghijklmn")
)

// testAPIKey is the API key of the secure test servers.
const testAPIKey = "api-key-0123456789-abcdef"

// secure configures a server with tokens (an HMAC secret and an RSA public
// key), an API key and namespaces of every kind:
//
//	""        anonymous subscribe, no client publish (the default)
//	orders    tokens only
//	chat      anonymous subscribe and client publish
//	private   tokens only, client publish
func secure(t *testing.T) func(*Config) {
	t.Helper()
	pubFile := filepath.Join(t.TempDir(), "rsa.pem")
	writeFile(t, pubFile, string(authtest.PublicPEM(t, &authtest.RSAKey().PublicKey)))
	return func(c *Config) {
		c.APIKeys = []string{testAPIKey}
		c.Tokens.Keys = []TokenKey{{Secret: string(testSecret)}, {PublicKeyFile: pubFile}}
		c.Namespaces = []session.Namespace{
			{Name: "orders", HistorySize: 10, HistoryTTL: time.Minute},
			{Name: "chat", HistorySize: 10, HistoryTTL: time.Minute, Anonymous: true, ClientPublish: true},
			{Name: "private", HistorySize: 10, HistoryTTL: time.Minute, ClientPublish: true},
		}
	}
}

// then runs several config mutators in order.
func then(fs ...func(*Config)) func(*Config) {
	return func(c *Config) {
		for _, f := range fs {
			f(c)
		}
	}
}

// connToken mints a connection token with the server's secret.
func connToken(t *testing.T, sub string, channels, publish []string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Mint(auth.MintConfig{Sub: sub, Channels: channels, Publish: publish, TTL: ttl, Key: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tamper replaces a signed token's payload, keeping its signature.
func tamper(t *testing.T, tok string, claims jwt.MapClaims) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	other := sign(t, jwt.SigningMethodHS256, otherSecret, claims)
	parts[1] = strings.Split(other, ".")[1]
	return strings.Join(parts, ".")
}

// badTokens are tokens every transport must refuse; base is the kind of
// token the route expects, the cases change one thing about it.
func badTokens(t *testing.T, base jwt.MapClaims) []struct {
	name    string
	tok     string
	expired bool // refused as expired (3007, "token expired") rather than invalid
} {
	t.Helper()
	now := time.Now()
	with := func(changes map[string]any) jwt.MapClaims {
		c := jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for k, v := range base {
			c[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	otherKind := auth.KindPublisher
	if base["kind"] == auth.KindPublisher {
		otherKind = auth.KindConnection
	}
	rsaPEM := authtest.PublicPEM(t, &authtest.RSAKey().PublicKey)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, with(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, jwt.SigningMethodHS256, testSecret, with(nil))
	return []struct {
		name    string
		tok     string
		expired bool
	}{
		{"expired", sign(t, jwt.SigningMethodHS256, testSecret, with(map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()})), true},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, testSecret, with(map[string]any{"nbf": now.Add(time.Hour).Unix()})), false},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, testSecret, with(map[string]any{"iat": now.Add(time.Hour).Unix()})), false},
		{"wrong algorithm HS384", sign(t, jwt.SigningMethodHS384, testSecret, with(nil)), false},
		{"ES256 without an ES256 key", sign(t, jwt.SigningMethodES256, authtest.ECKey(), with(nil)), false},
		{"alg none", none, false},
		{"wrong key", sign(t, jwt.SigningMethodHS256, otherSecret, with(nil)), false},
		{"HMAC signed with the RSA public key", sign(t, jwt.SigningMethodHS256, rsaPEM, with(nil)), false},
		{"missing sub", sign(t, jwt.SigningMethodHS256, testSecret, with(map[string]any{"sub": nil})), false},
		{"missing exp", sign(t, jwt.SigningMethodHS256, testSecret, with(map[string]any{"exp": nil})), false},
		{"tampered payload", tamper(t, good, with(map[string]any{"sub": "root", "channels": []string{"*"}, "publish": []string{"*"}})), false},
		{"other kind", sign(t, jwt.SigningMethodHS256, testSecret, with(map[string]any{"kind": otherKind})), false},
		{"garbage", "not.a.token", false},
	}
}

func TestBadTokensOnEveryTransport(t *testing.T) {
	ts := newTestServer(t, secure(t))
	conn := jwt.MapClaims{"sub": "17", "channels": []string{"orders:17"}}
	tokens := badTokens(t, conn)
	pubTokens := badTokens(t, jwt.MapClaims{"sub": "backend", "kind": auth.KindPublisher, "publish": []string{"*"}})
	// The request itself is one a good token would pass: orders:17 needs
	// a token.
	chq := func(tok string) url.Values { return withToken(url.Values{"channel": {"orders:17"}}, tok) }

	for i, bt := range tokens {
		d, reason := session.DisconnectInvalidToken, "invalid token"
		if bt.expired {
			d, reason = session.DisconnectTokenExpired, "token expired"
		}
		httpWant := outcome{code: http.StatusUnauthorized, reason: reason}
		type try struct {
			name string
			try  func() outcome
			want outcome
		}
		t.Run(bt.name, func(t *testing.T) {
			var tries []try
			for _, ct := range commandTransports {
				tries = append(tries,
					try{ct.name + " token query", func() outcome { return ct.run(t, ts.URL, bt.tok) }, outcome{code: d.Code, reason: d.Reason}},
					try{ct.name + " auth command", func() outcome { return ct.run(t, ts.URL, "", authenticating(bt.tok)) }, httpWant})
			}
			for _, tr := range append(tries, []try{
				{"ws subscribe token", func() outcome { return wsCommands.run(t, ts.URL, "", subscribing("orders:17", bt.tok)) }, httpWant},
				{"sse", func() outcome { o, _ := sseOpen(t, ts.URL, chq(bt.tok)); return o }, httpWant},
				{"poll", func() outcome { o, _ := pollGet(t, ts.URL, chq(bt.tok), ""); return o }, httpWant},
				{"jsonp", func() outcome { o, _ := pollGet(t, ts.URL, chq(bt.tok), "cb"); return o }, httpWant},
				{"client publish", func() outcome { o, _ := clientPublish(t, ts.URL, "private:17", bt.tok); return o }, httpWant},
				{"api publish", func() outcome {
					a := postJSON(t, ts.URL+"/api/publish", `{"channel":"news","data":1}`, "Authorization", "Bearer "+pubTokens[i].tok)
					if a.status == http.StatusOK {
						return outcome{ok: true}
					}
					code, reason := errorOf(a.body)
					return outcome{code: code, reason: reason}
				}, outcome{code: http.StatusUnauthorized, reason: "invalid publisher token"}},
			}...) {
				t.Run(tr.name, func(t *testing.T) {
					got := tr.try()
					if got.ok || got.code != tr.want.code || !strings.Contains(got.reason, tr.want.reason) {
						t.Fatalf("got %v, want %v", got, tr.want)
					}
				})
			}
		})
	}

	t.Run("a good token passes the same requests", func(t *testing.T) {
		tok := connToken(t, "17", []string{"orders:17"}, []string{"private:17"}, time.Hour)
		if _, o := dialWSToken(t, ts.URL, tok); !o.ok {
			t.Errorf("ws: %v", o)
		}
		if o, _ := sseOpen(t, ts.URL, chq(tok)); !o.ok {
			t.Errorf("sse: %v", o)
		}
		if o, _ := pollGet(t, ts.URL, chq(tok), "cb"); !o.ok {
			t.Errorf("jsonp: %v", o)
		}
		if _, o := dialSockJS(t, ts.URL, tok); !o.ok {
			t.Errorf("sockjs: %v", o)
		}
		if o, _ := clientPublish(t, ts.URL, "private:17", tok); !o.ok {
			t.Errorf("client publish: %v", o)
		}
		pub, err := auth.Mint(auth.MintConfig{Sub: "backend", Kind: auth.KindPublisher, Publish: []string{"*"}, TTL: time.Hour, Key: testSecret})
		if err != nil {
			t.Fatal(err)
		}
		if a := postJSON(t, ts.URL+"/api/publish", `{"channel":"news","data":1}`, "Authorization", "Bearer "+pub); a.status != 200 {
			t.Errorf("api publish with a publisher token: %d %s", a.status, a.body)
		}
	})
	t.Run("no token reaches a log line", func(t *testing.T) {
		logs := ts.logs.String()
		for _, bt := range append(tokens, pubTokens...) {
			if strings.Contains(logs, bt.tok) || strings.Contains(logs, strings.Split(bt.tok, ".")[0]+".") {
				t.Fatalf("a token is in the log:\n%s", logs)
			}
		}
		if !strings.Contains(logs, "token refused") {
			t.Errorf("refusals not logged at debug level")
		}
	})
}

func TestGrantMatrix(t *testing.T) {
	ts := newTestServer(t, secure(t))
	tok17 := connToken(t, "17", []string{"orders:17"}, []string{"private:17"}, time.Hour)
	holders := map[string]string{"anonymous": "", "sub 17": tok17}
	type grantCase struct {
		who, ch string
		code    int // 0: allowed
	}
	type try struct {
		name string
		try  func(tok, ch string) outcome
	}
	// check runs every case through every try, as subtests verb/try.
	check := func(verb, doing string, tries []try, cases []grantCase) {
		for _, tr := range tries {
			t.Run(verb+"/"+tr.name, func(t *testing.T) {
				for _, c := range cases {
					got := tr.try(holders[c.who], c.ch)
					if (c.code == 0) != got.ok || (c.code != 0 && got.code != c.code) {
						t.Errorf("%s %s %s: %v, want %d (0: allowed)", c.who, doing, c.ch, got, c.code)
					}
				}
			})
		}
	}
	subscribes := []grantCase{
		{"anonymous", "news", 0},             // anonymous namespace
		{"anonymous", "chat:lobby", 0},       // anonymous namespace
		{"anonymous", "orders:17", 401},      // the namespace needs a token
		{"anonymous", "private:17", 401},     // the namespace needs a token
		{"anonymous", "user#17", 401},        // personal channels always need one
		{"anonymous", "user#17:orders", 401}, // personal prefix in the default namespace
		{"anonymous", "chat:user#17", 0},     // only channels starting user# are personal
		{"sub 17", "orders:17", 0},           // granted by pattern
		{"sub 17", "orders:18", 403},         // not granted
		{"sub 17", "orders:17:archive", 403}, // an exact pattern is exact
		{"sub 17", "private:17", 403},        // publish grants do not subscribe
		{"sub 17", "user#17", 0},             // own personal channel
		{"sub 17", "user#18", 403},           // someone else's
		{"sub 17", "user#1", 403},            // a prefix of the subject is not the subject
		{"sub 17", "user#170", 403},          // nor is a longer one
		{"sub 17", "news", 0},                // anonymous namespace, token or not
		{"sub 17", "chat:lobby", 0},          // anonymous namespace, token or not
		{"anonymous", "orders:17", 401},      // after a granted request: nothing was cached
	}
	subscribers := []try{
		{"ws token in subscribe", func(tok, ch string) outcome { return wsCommands.run(t, ts.URL, "", subscribing(ch, tok)) }},
		{"sse", func(tok, ch string) outcome {
			o, _ := sseOpen(t, ts.URL, withToken(url.Values{"channel": {ch}}, tok))
			return o
		}},
		{"poll", func(tok, ch string) outcome {
			o, _ := pollGet(t, ts.URL, withToken(url.Values{"channel": {ch}}, tok), "")
			return o
		}},
		{"jsonp", func(tok, ch string) outcome {
			o, _ := pollGet(t, ts.URL, withToken(url.Values{"channel": {ch}}, tok), "cb")
			return o
		}},
	}
	for _, ct := range commandTransports {
		subscribers = append(subscribers,
			try{ct.name, func(tok, ch string) outcome { return ct.run(t, ts.URL, tok, subscribing(ch, "")) }},
			try{ct.name + " auth then subscribe", func(tok, ch string) outcome {
				if tok == "" {
					return ct.run(t, ts.URL, "", subscribing(ch, ""))
				}
				return ct.run(t, ts.URL, "", authenticating(tok), subscribing(ch, ""))
			}})
	}
	check("subscribe", "subscribing to", subscribers, subscribes)

	publishes := []grantCase{
		{"anonymous", "chat:lobby", 0},   // anonymous namespace with client publish
		{"anonymous", "news", 403},       // no client publish in the namespace
		{"anonymous", "orders:17", 403},  // no client publish in the namespace
		{"anonymous", "private:17", 401}, // client publish, but tokens only
		{"anonymous", "user#17", 403},    // default namespace: no client publish
		{"sub 17", "private:17", 0},      // granted by a publish pattern
		{"sub 17", "private:18", 403},    // not granted
		{"sub 17", "private:17x", 403},   // an exact pattern is exact
		{"sub 17", "news", 403},          // no client publish, whatever the token
		{"sub 17", "orders:17", 403},     // subscribe grants do not publish
		{"sub 17", "chat:lobby", 0},      // anonymous namespace with client publish
		{"sub 17", "chat:user#17", 0},    // not a personal channel
		{"anonymous", "private:17", 401}, // after a granted request: nothing was cached
	}
	publishers := []try{
		{"client publish (sse and poll)", func(tok, ch string) outcome {
			o, _ := clientPublish(t, ts.URL, ch, tok)
			return o
		}},
	}
	for _, ct := range commandTransports {
		publishers = append(publishers, try{ct.name, func(tok, ch string) outcome { return ct.run(t, ts.URL, tok, publishing(ch, "x")) }})
	}
	check("publish", "publishing to", publishers, publishes)

	t.Run("publisher tokens on the API", func(t *testing.T) {
		pub, err := auth.Mint(auth.MintConfig{Sub: "billing", Kind: auth.KindPublisher, Publish: []string{"orders:*"},
			Channels: []string{"audit"}, TTL: time.Hour, Key: testSecret})
		if err != nil {
			t.Fatal(err)
		}
		bearer := []string{"Authorization", "Bearer " + pub}
		for _, c := range []struct {
			method, path, body string
			status             int
		}{
			{http.MethodPost, "/api/publish", `{"channel":"orders:1","data":1}`, 200},
			{http.MethodPost, "/api/publish", `{"channel":"news","data":1}`, 403},
			{http.MethodGet, "/api/history?channel=orders:1", "", 200},
			{http.MethodGet, "/api/history?channel=audit", "", 200},
			{http.MethodGet, "/api/history?channel=news", "", 403},
		} {
			a := do(t, c.method, ts.URL+c.path, c.body, append([]string{"Content-Type", jsonType}, bearer...)...)
			if a.status != c.status {
				t.Errorf("%s %s: %d %s, want %d", c.method, c.path, a.status, a.body, c.status)
			}
		}
		a := postJSON(t, ts.URL+"/api/broadcast", `{"channels":["orders:2","news"],"data":1}`, bearer...)
		var ans struct {
			Results []broadcastResult `json:"results"`
		}
		a.decode(t, &ans)
		if a.status != 200 || len(ans.Results) != 2 || ans.Results[0].Error != nil || ans.Results[1].Error == nil || ans.Results[1].Error.Code != 403 {
			t.Errorf("broadcast: %d %s", a.status, a.body)
		}
		// A connection token, even one granting every channel, never publishes through the API.
		all := connToken(t, "17", []string{"*"}, []string{"*"}, time.Hour)
		if a := postJSON(t, ts.URL+"/api/publish", `{"channel":"news","data":1}`, "Authorization", "Bearer "+all); a.status != 401 {
			t.Errorf("connection token on the API: %d %s", a.status, a.body)
		}
	})
}

func TestPersonalChannelsArePrivateWithoutTokens(t *testing.T) {
	// No token keys at all: the default namespace is anonymous, and still
	// nobody may subscribe to a personal channel, and a token is refused
	// rather than ignored.
	ts := newTestServer(t, nil)
	c, _ := dialWSToken(t, ts.URL, "")
	if f := c.command(1, subscribeCmd(1, "user#17", "")); f.Type != "error" || f.Code != 401 {
		t.Errorf("personal channel without tokens: %+v", f)
	}
	if f := c.command(2, subscribeCmd(2, "news", "")); f.Type != "subscribed" {
		t.Errorf("anonymous channel: %+v", f)
	}
	tok := connToken(t, "17", nil, nil, time.Hour)
	if _, o := dialWSToken(t, ts.URL, tok); o.code != session.DisconnectInvalidToken.Code {
		t.Errorf("a token on a server without keys: %v", o)
	}
	if o, _ := sseOpen(t, ts.URL, withToken(url.Values{"channel": {"news"}}, tok)); o.code != 401 {
		t.Errorf("sse with a token on a server without keys: %v", o)
	}
}

func TestOriginMatrix(t *testing.T) {
	const app = "https://app.example.com"
	listed := newTestServer(t, func(c *Config) { c.AllowedOrigins = []string{app} })
	anyOrigin := newTestServer(t, func(c *Config) { c.AllowedOrigins = []string{"*"} })
	cases := []struct {
		name    string
		srv     *testServer
		origin  string // "" sends none; "self" is the server's own origin
		allowed bool
	}{
		{"listed origin", listed, app, true},
		{"unlisted origin", listed, "https://evil.example", false},
		{"lookalike origin", listed, "https://app.example.com.evil.example", false},
		{"other scheme", listed, "http://app.example.com", false},
		{"null origin", listed, "null", false},
		{"no origin (not a browser)", listed, "", true},
		{"same origin", listed, "self", true},
		{"star allows any", anyOrigin, "https://evil.example", true},
	}
	routes := []struct {
		name string
		// try returns whether the request got through the origin check, and
		// the CORS origin the answer allows ("" when none; see corsOf).
		try func(t *testing.T, ts *testServer, h []string) (bool, string)
	}{
		{"ws", func(t *testing.T, ts *testServer, h []string) (bool, string) {
			_, o := dialWSToken(t, ts.URL, "", h...)
			return o.ok || o.code != 403, ""
		}},
		{"sse", func(t *testing.T, ts *testServer, h []string) (bool, string) {
			o, hd := sseOpen(t, ts.URL, url.Values{"channel": {"news"}}, h...)
			return o.code != 403, corsOf(hd)
		}},
		{"poll", func(t *testing.T, ts *testServer, h []string) (bool, string) {
			o, hd := pollGet(t, ts.URL, url.Values{"channel": {"news"}}, "", h...)
			return o.code != 403, corsOf(hd)
		}},
		{"jsonp", func(t *testing.T, ts *testServer, h []string) (bool, string) {
			// A script tag sends Referer, not Origin (unless it is marked
			// crossorigin, or the page is opaque: Origin null).
			if len(h) == 2 && h[1] != "null" {
				h = []string{"Referer", h[1] + "/page.html"}
			}
			o, _ := pollGet(t, ts.URL, url.Values{"channel": {"news"}}, "cb", h...)
			return o.code != 403, ""
		}},
		{"sockjs", func(t *testing.T, ts *testServer, h []string) (bool, string) {
			a := do(t, http.MethodGet, ts.URL+"/connect/sockjs/info", "", h...)
			return a.status != 403, ""
		}},
		{"sockjs websocket", func(t *testing.T, ts *testServer, h []string) (bool, string) {
			_, o := dialSockJS(t, ts.URL, "", h...)
			return o.code != 403, ""
		}},
		{"client publish", func(t *testing.T, ts *testServer, h []string) (bool, string) {
			o, hd := clientPublish(t, ts.URL, "news", "", h...) // 403 from the namespace has another reason
			return !(o.code == 403 && strings.Contains(o.reason, "origin")), corsOf(hd)
		}},
		{"api publish", func(t *testing.T, ts *testServer, h []string) (bool, string) {
			a := postJSON(t, ts.URL+"/api/publish", `{"channel":"news","data":1}`, h...)
			return a.status != 403, a.header.Get("Access-Control-Allow-Origin")
		}},
	}
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			for _, c := range cases {
				origin := c.origin
				if origin == "self" {
					origin = c.srv.URL
				}
				var h []string
				if origin != "" {
					h = []string{"Origin", origin}
				}
				passed, cors := rt.try(t, c.srv, h)
				if passed != c.allowed {
					t.Errorf("%s: passed %v, want %v", c.name, passed, c.allowed)
				}
				switch {
				case rt.name == "api publish" && cors != "":
					t.Errorf("%s: the backend API answered with CORS for %q", c.name, cors)
				case rt.name != "api publish" && !c.allowed && cors != "" && cors != origin:
					// A refused page may read its 403 (to tell its user why),
					// never with credentials.
					t.Errorf("%s: refused, yet CORS allows %q", c.name, cors)
				case (rt.name == "sse" || rt.name == "poll" || rt.name == "client publish") && c.allowed && origin != "" && cors != origin+withCredentials:
					t.Errorf("%s: CORS allows %q, want the page's origin with credentials", c.name, cors)
				}
			}
		})
	}
}

const withCredentials = " with credentials"

// corsOf returns the origin an answer's CORS headers allow, followed by
// withCredentials when they allow credentials too ("" when none).
func corsOf(h http.Header) string {
	o := h.Get("Access-Control-Allow-Origin")
	if o != "" && h.Get("Access-Control-Allow-Credentials") == "true" {
		o += withCredentials
	}
	return o
}

// TestParameterGivenTwice: a request giving one of its parameters twice is
// refused wherever the parameter is read, even when both values are the
// same good one: this server would read the first, where a proxy, gateway
// or WAF in front may have checked the last (as with a JSON name given
// twice).
func TestParameterGivenTwice(t *testing.T) {
	ts := newTestServer(t, secure(t))
	tok := connToken(t, "17", []string{"orders:17"}, nil, time.Hour)
	key := []string{"Authorization", "Bearer " + testAPIKey}
	twice := func(name string) outcome {
		return outcome{code: http.StatusBadRequest, reason: fmt.Sprintf("the parameter %q is given more than once", name)}
	}
	check := func(t *testing.T, what string, got, want outcome) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	for _, tc := range []struct{ path, param string }{
		{"/api/history?channel=news&channel=orders:17", "channel"},
		{"/api/history?channel=news&limit=1&limit=1000", "limit"},
		{"/api/history?channel=news&since_epoch=a&since_offset=1&since_offset=2", "since_offset"},
		{"/api/presence?channel=chat:1&channel=chat:2", "channel"},
		{"/api/presence/stats?channel=chat:1&channel=chat:1", "channel"},
		{"/api/channels?prefix=chat:&prefix=", "prefix"},
		{"/api/publish?channel=a&channel=b", "channel"}, // the body is what counts, but no parameter is read twice either
	} {
		method, body := http.MethodGet, ""
		if strings.HasPrefix(tc.path, "/api/publish") {
			method, body = http.MethodPost, `{"channel":"news","data":1}`
		}
		a := do(t, method, ts.URL+tc.path, body, append([]string{"Content-Type", "application/json"}, key...)...)
		code, reason := errorOf(a.body)
		check(t, tc.path, outcome{code: a.status, reason: reason}, twice(tc.param))
		if code != a.status {
			t.Errorf("%s: error body %s under status %d", tc.path, a.body, a.status)
		}
	}

	// Two Authorization headers, even the same good key twice: RFC 9110
	// makes it no list.
	req, err := http.NewRequest(http.MethodGet, ts.URL+"/api/history?channel=news", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["Authorization"] = []string{key[1], key[1]}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, reason := errorOf(b)
	check(t, "api, Authorization twice", outcome{code: resp.StatusCode, reason: reason},
		outcome{code: http.StatusBadRequest, reason: "the Authorization header is given more than once"})
	bearer := "Bearer " + tok
	o, _ := sseOpen(t, ts.URL, url.Values{"channel": {"orders:17"}}, "Authorization", bearer)
	check(t, "sse, Authorization once", o, outcome{ok: true})
	st, a := wiretest.DialSSE(t, http.DefaultClient, ts.URL+"/connect/sse?channel=orders:17", http.Header{"Authorization": {bearer, bearer}})
	if st != nil {
		st.Close()
		t.Errorf("sse, Authorization twice: connected")
	} else if a.Status != http.StatusUnauthorized {
		t.Errorf("sse, Authorization twice: %d %s, want 401", a.Status, a.Body)
	}

	q := url.Values{"channel": {"orders:17"}, "token": {tok, tok}}
	o, _ = sseOpen(t, ts.URL, q)
	check(t, "sse, token twice", o, twice("token"))
	o, _ = pollGet(t, ts.URL, url.Values{"channel": {"orders:17"}, "token": {tok, tok}}, "")
	check(t, "poll, token twice", o, twice("token"))
	o, _ = pollPost(t, ts.URL+"/connect/poll?token="+tok+"&x=", url.Values{"channel": {"orders:17"}, "token": {tok}})
	check(t, "POST poll, token in the query and the form", o, twice("token"))
	cur := session.Cursor{"orders:17": {Epoch: "e", Offset: 1}}.Encode()
	o, _ = sseOpen(t, ts.URL, url.Values{"channel": {"orders:17"}, "token": {tok}, "cursor": {cur, cur}})
	check(t, "sse, cursor twice", o, twice("cursor"))

	// WebSocket and SockJS read the token in Authenticate: a connection
	// given it twice is refused as with an invalid token.
	conn, o := dialRefusable(t, wsURL(ts.URL, "/connect/ws")+"?token="+tok+"&token="+tok, "")
	if !o.ok {
		t.Fatalf("ws dial: %v", o)
	}
	c := &wsClient{WSClient: wiretest.NewWSClient(t, conn), t: t}
	c.expectClose(session.DisconnectInvalidToken.Code)

	// Given once, the same requests pass.
	o, _ = sseOpen(t, ts.URL, url.Values{"channel": {"orders:17"}, "token": {tok}})
	check(t, "sse, token once", o, outcome{ok: true})
	if _, o := dialWSToken(t, ts.URL, tok); !o.ok {
		t.Errorf("ws, token once: %v", o)
	}
}
