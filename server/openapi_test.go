package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/waterspout/waterspout/server/auth"
)

// notProduced are documented answers no test here can cause: the memory
// broker is never unavailable, and an internal error is a bug.
var notProduced = map[string]bool{"500": true, "503": true}

// TestOpenAPIConformance sends a request for every route and every
// documented error to a real server, and checks each request and answer
// against server/openapi.json with kin-openapi's validator: a field, a
// status or a header the document does not have fails it, and so does a
// documented answer no case produced or an /api/* route the document lacks.
func TestOpenAPIConformance(t *testing.T) {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	// The document's one server is relative ("/": wherever it is served
	// from); the router matches paths alone without servers.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	const key = "openapi-test-key-0123456789"
	main := newTestServer(t, func(c *Config) {
		c.APIKeys = []string{key}
		c.Limits.MaxMessageBytes = 1024
		c.RateLimits.PublishesPerSecond = NoLimit
	})
	limited := newTestServer(t, func(c *Config) {
		c.APIKeys = []string{key}
		c.RateLimits.PublishesPerSecond, c.RateLimits.PublishBurst = 1, 1
		c.RateLimits.APICallsPerSecond, c.RateLimits.APICallBurst = 1, 1
	})
	// A publisher token for the server API cases (minted before the
	// variable auth hides the package).
	pubTok, err := auth.Mint(auth.MintConfig{Sub: "backend", Kind: auth.KindPublisher, Publish: []string{"room:1"},
		Channels: []string{"plain:*"}, TTL: time.Hour, Key: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	auth := []string{"Authorization", "Bearer " + key}
	wrongKey := []string{"Authorization", "Bearer not-the-key-at-all"}
	evil := append([]string{"Origin", "https://evil.example"}, auth...)
	big := `"` + strings.Repeat("x", 2000) + `"`

	// The server API: a namespace "room" keeps presence and sends
	// join/leave, "plain" does not. Alice is subscribed to room:1 and
	// chat:1, so presence lists her and /api/channels counts both.
	pres := presenceServer(t)
	alice, _ := dialWSToken(t, pres.URL, connToken(t, "alice", nil, nil, time.Hour))
	alice.subscribe("room:1")
	alice.subscribe("chat:1")
	pAuth := []string{"Authorization", "Bearer " + testAPIKey}
	pEvil := append([]string{"Origin", "https://evil.example"}, pAuth...)
	pub := []string{"Authorization", "Bearer " + pubTok}
	// Bodies the document accepts, over the 4 KiB limit.
	pad := strings.Repeat(" ", maxControlBody)
	paddedDisconnect, paddedUnsubscribe := `{"user":"alice"`+pad+`}`, `{"user":"alice","channel":"room:1"`+pad+`}`

	tests := []struct {
		name         string
		srv          *testServer
		method, path string
		ctype, body  string
		headers      []string
		status       int
		requestValid bool // whether the document accepts the request
	}{
		{"publish", main, "POST", "/api/publish", jsonType, `{"channel":"news","data":{"a":1},"key":"k1"}`, auth, 200, true},
		{"publish a repeated key", main, "POST", "/api/publish", jsonType, `{"channel":"news","data":{"a":1},"key":"k1"}`, auth, 200, true},
		{"publish form data", main, "POST", "/api/publish", formType, "channel=news&data=hello", auth, 200, true},
		{"publish form json", main, "POST", "/api/publish", formType, "channel=news&json=%7B%22n%22%3A1%7D&submit=go", auth, 200, true},
		{"publish bad channel", main, "POST", "/api/publish", jsonType, `{"channel":"bad channel","data":1}`, auth, 400, false},
		{"publish unknown field", main, "POST", "/api/publish", jsonType, `{"channel":"news","data":1,"kye":"x"}`, auth, 400, false},
		{"publish without data", main, "POST", "/api/publish", jsonType, `{"channel":"news"}`, auth, 400, false},
		{"publish with a wrong key", main, "POST", "/api/publish", jsonType, `{"channel":"news","data":1}`, wrongKey, 401, true},
		{"publish without credential", main, "POST", "/api/publish", jsonType, `{"channel":"news","data":1}`, nil, 401, false},
		{"publish from a foreign page", main, "POST", "/api/publish", jsonType, `{"channel":"news","data":1}`, evil, 403, true},
		{"publish too large", main, "POST", "/api/publish", jsonType, `{"channel":"news","data":` + big + `}`, auth, 413, true},
		{"publish text", main, "POST", "/api/publish", "text/plain", `hello`, auth, 415, false},
		{"publish within the rate", limited, "POST", "/api/publish", jsonType, `{"channel":"news","data":1}`, auth, 200, true},
		{"publish over the rate", limited, "POST", "/api/publish", jsonType, `{"channel":"news","data":2}`, auth, 429, true},

		{"broadcast", main, "POST", "/api/broadcast", jsonType, `{"channels":["a","b"],"data":1,"key":"b1"}`, auth, 200, true},
		{"broadcast with a bad channel", main, "POST", "/api/broadcast", jsonType, `{"channels":["a","bad channel"],"data":1}`, auth, 200, true},
		{"broadcast to no channel", main, "POST", "/api/broadcast", jsonType, `{"channels":[],"data":1}`, auth, 400, false},
		{"broadcast to a channel twice", main, "POST", "/api/broadcast", jsonType, `{"channels":["a","a"],"data":1}`, auth, 400, false},
		{"broadcast a form", main, "POST", "/api/broadcast", formType, `channels=a&data=1`, auth, 415, false},
		{"broadcast too large", main, "POST", "/api/broadcast", jsonType, `{"channels":["a"],"data":` + big + `}`, auth, 413, true},
		{"broadcast with a wrong key", main, "POST", "/api/broadcast", jsonType, `{"channels":["a"],"data":1}`, wrongKey, 401, true},
		{"broadcast from a foreign page", main, "POST", "/api/broadcast", jsonType, `{"channels":["a"],"data":1}`, evil, 403, true},
		{"broadcast over the rate", limited, "POST", "/api/broadcast", jsonType, `{"channels":["a","b"],"data":1}`, auth, 429, true},

		{"batch", main, "POST", "/api/batch", jsonType, `{"publications":[{"channel":"batch:a","data":1,"key":"x1"},{"channel":"batch:a","data":2,"key":"x1"},{"channel":"batch:b","data":{"n":3}}]}`, auth, 200, true},
		{"batch beyond a publisher token", pres, "POST", "/api/batch", jsonType, `{"publications":[{"channel":"room:1","data":1},{"channel":"chat:1","data":2}]}`, pub, 200, true},
		{"batch with a bad channel", main, "POST", "/api/batch", jsonType, `{"publications":[{"channel":"a","data":1},{"channel":"bad channel","data":1}]}`, auth, 400, false},
		{"batch of nothing", main, "POST", "/api/batch", jsonType, `{"publications":[]}`, auth, 400, false},
		{"batch with an unknown field", main, "POST", "/api/batch", jsonType, `{"publications":[{"channel":"a","data":1,"kye":"k"}]}`, auth, 400, false},
		{"batch a form", main, "POST", "/api/batch", formType, `channel=a&data=1`, auth, 415, false},
		{"batch too large", main, "POST", "/api/batch", jsonType, `{"publications":[{"channel":"a","data":` + big + `}]}`, auth, 413, true},
		{"batch with a wrong key", main, "POST", "/api/batch", jsonType, `{"publications":[{"channel":"a","data":1}]}`, wrongKey, 401, true},
		{"batch from a foreign page", main, "POST", "/api/batch", jsonType, `{"publications":[{"channel":"a","data":1}]}`, evil, 403, true},
		{"batch over the rate", limited, "POST", "/api/batch", jsonType, `{"publications":[{"channel":"a","data":1},{"channel":"b","data":1}]}`, auth, 429, true},

		{"history", main, "GET", "/api/history?channel=news", "", "", auth, 200, true},
		{"history since", main, "GET", "/api/history?channel=news&since_epoch=abc&since_offset=1&limit=2", "", "", auth, 200, true},
		{"history position", main, "GET", "/api/history?channel=a&limit=0", "", "", auth, 200, true},
		{"history negative limit", main, "GET", "/api/history?channel=news&limit=-1", "", "", auth, 400, false},
		{"history half a position", main, "GET", "/api/history?channel=news&since_epoch=abc", "", "", auth, 400, true},
		{"history bad channel", main, "GET", "/api/history?channel=a%20b", "", "", auth, 400, false},
		{"history with a wrong key", main, "GET", "/api/history?channel=news", "", "", wrongKey, 401, true},
		{"history from a foreign page", main, "GET", "/api/history?channel=news", "", "", evil, 403, true},
		{"history within the rate", limited, "GET", "/api/history?channel=news", "", "", auth, 200, true},
		{"channels over the rate", limited, "GET", "/api/channels", "", "", auth, 429, true},
		{"unsubscribe over the rate", limited, "POST", "/api/unsubscribe", jsonType, `{"user":"bob","channel":"news"}`, auth, 429, true},
		{"presence over the rate", limited, "GET", "/api/presence?channel=news", "", "", auth, 429, true},
		{"presence stats over the rate", limited, "GET", "/api/presence/stats?channel=news", "", "", auth, 429, true},
		{"disconnect over the rate", limited, "POST", "/api/disconnect", jsonType, `{"user":"bob"}`, auth, 429, true},
		{"history over the rate", limited, "GET", "/api/history?channel=news", "", "", auth, 429, true},

		{"presence", pres, "GET", "/api/presence?channel=room:1", "", "", pAuth, 200, true},
		{"presence with a publisher token", pres, "GET", "/api/presence?channel=room:1", "", "", pub, 200, true},
		{"presence without a channel", pres, "GET", "/api/presence", "", "", pAuth, 400, false},
		{"presence bad channel", pres, "GET", "/api/presence?channel=a%20b", "", "", pAuth, 400, false},
		{"presence with a wrong key", pres, "GET", "/api/presence?channel=room:1", "", "", wrongKey, 401, true},
		{"presence without presence in the namespace", pres, "GET", "/api/presence?channel=plain:1", "", "", pAuth, 403, true},
		{"presence beyond a publisher token", pres, "GET", "/api/presence?channel=room:2", "", "", pub, 403, true},
		{"presence from a foreign page", pres, "GET", "/api/presence?channel=room:1", "", "", pEvil, 403, true},

		{"presence stats", pres, "GET", "/api/presence/stats?channel=room:1", "", "", pAuth, 200, true},
		{"presence stats bad channel", pres, "GET", "/api/presence/stats?channel=", "", "", pAuth, 400, false},
		{"presence stats with a wrong key", pres, "GET", "/api/presence/stats?channel=room:1", "", "", wrongKey, 401, true},
		{"presence stats without presence in the namespace", pres, "GET", "/api/presence/stats?channel=plain:1", "", "", pAuth, 403, true},
		{"presence stats from a foreign page", pres, "GET", "/api/presence/stats?channel=room:1", "", "", pEvil, 403, true},

		{"channels", pres, "GET", "/api/channels", "", "", pAuth, 200, true},
		{"channels by prefix", pres, "GET", "/api/channels?prefix=room:", "", "", pAuth, 200, true},
		{"channels with a publisher token", pres, "GET", "/api/channels", "", "", pub, 200, true},
		{"channels long prefix", pres, "GET", "/api/channels?prefix=" + strings.Repeat("x", 300), "", "", pAuth, 400, false},
		{"channels with a wrong key", pres, "GET", "/api/channels", "", "", wrongKey, 401, true},
		{"channels from a foreign page", pres, "GET", "/api/channels", "", "", pEvil, 403, true},

		{"disconnect nobody", pres, "POST", "/api/disconnect", jsonType, `{"user":"bob"}`, pAuth, 200, true},
		{"disconnect another session", pres, "POST", "/api/disconnect", jsonType, `{"user":"alice","client":"no-such-session"}`, pAuth, 200, true},
		{"disconnect without user", pres, "POST", "/api/disconnect", jsonType, `{}`, pAuth, 400, false},
		{"disconnect misspelt field", pres, "POST", "/api/disconnect", jsonType, `{"user":"alice","clinet":"x"}`, pAuth, 400, false},
		{"disconnect with a channel", pres, "POST", "/api/disconnect", jsonType, `{"user":"alice","channel":"room:1"}`, pAuth, 400, false},
		{"disconnect with a wrong key", pres, "POST", "/api/disconnect", jsonType, `{"user":"alice"}`, wrongKey, 401, true},
		{"disconnect with a publisher token", pres, "POST", "/api/disconnect", jsonType, `{"user":"alice"}`, pub, 403, true},
		{"disconnect from a foreign page", pres, "POST", "/api/disconnect", jsonType, `{"user":"alice"}`, pEvil, 403, true},
		{"disconnect too large", pres, "POST", "/api/disconnect", jsonType, paddedDisconnect, pAuth, 413, true},
		{"disconnect as a form", pres, "POST", "/api/disconnect", formType, `user=alice`, pAuth, 415, false},

		{"unsubscribe", pres, "POST", "/api/unsubscribe", jsonType, `{"user":"bob","channel":"room:1"}`, pAuth, 200, true},
		{"unsubscribe with a publisher token", pres, "POST", "/api/unsubscribe", jsonType, `{"user":"bob","channel":"room:1"}`, pub, 200, true},
		{"unsubscribe without channel", pres, "POST", "/api/unsubscribe", jsonType, `{"user":"alice"}`, pAuth, 400, false},
		{"unsubscribe with a client", pres, "POST", "/api/unsubscribe", jsonType, `{"user":"alice","channel":"room:1","client":"x"}`, pAuth, 400, false},
		{"unsubscribe bad channel", pres, "POST", "/api/unsubscribe", jsonType, `{"user":"alice","channel":"a b"}`, pAuth, 400, false},
		{"unsubscribe with a wrong key", pres, "POST", "/api/unsubscribe", jsonType, `{"user":"alice","channel":"room:1"}`, wrongKey, 401, true},
		{"unsubscribe beyond a publisher token", pres, "POST", "/api/unsubscribe", jsonType, `{"user":"alice","channel":"chat:1"}`, pub, 403, true},
		{"unsubscribe from a foreign page", pres, "POST", "/api/unsubscribe", jsonType, `{"user":"alice","channel":"room:1"}`, pEvil, 403, true},
		{"unsubscribe too large", pres, "POST", "/api/unsubscribe", jsonType, paddedUnsubscribe, pAuth, 413, true},
		{"unsubscribe text", pres, "POST", "/api/unsubscribe", "text/plain", `alice room:1`, pAuth, 415, false},

		{"openapi document", main, "GET", "/api/openapi.json", "", "", nil, 200, true},
	}
	// What some answers must hold besides matching the document: the lists
	// are not empty, so their item schemas are checked, and a publisher
	// token sees only the channels it may read.
	bodyHas := map[string][]string{
		"presence":                                   {`"clients":[{"client":"`, `"user":"alice"`},
		"presence with a publisher token":            {`"user":"alice"`},
		"presence stats":                             {`"clients":1,"users":1`},
		"channels":                                   {`{"channel":"chat:1","subscribers":1}`, `{"channel":"room:1","subscribers":1}`},
		"channels by prefix":                         {`{"channels":[{"channel":"room:1","subscribers":1}]}`},
		"channels with a publisher token":            {`{"channels":[{"channel":"room:1","subscribers":1}]}`},
		"presence without presence in the namespace": {"presence is not enabled in this namespace"},
		"disconnect with a publisher token":          {"needs an API key"},
		"batch":                                      {`{"channel":"batch:a","offset":1,"epoch":`, `"duplicate":true`, `{"channel":"batch:b","offset":1,`},
		"batch beyond a publisher token":             {`{"channel":"chat:1","error":{"code":403,`},
		"batch with a bad channel":                   {"publications[1]: "},
		"batch too large":                            {"publications[0]: data larger than 1024"},
	}

	opts := &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		// Only the form of the credential is the document's business; the
		// server decides whether it is right.
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
				return in.NewError(nil)
			}
			return nil
		},
	}
	seen := map[string]bool{} // "METHOD path status"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdrs := append([]string(nil), tt.headers...)
			if tt.ctype != "" {
				hdrs = append(hdrs, "Content-Type", tt.ctype)
			}
			a := do(t, tt.method, tt.srv.URL+tt.path, tt.body, hdrs...)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			for _, want := range bodyHas[tt.name] {
				if !bytes.Contains(a.body, []byte(want)) {
					t.Errorf("answer %s lacks %s", a.body, want)
				}
			}

			// The validator's view of the same request.
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, "http://localhost"+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(hdrs); i += 2 {
				req.Header.Set(hdrs[i], hdrs[i+1])
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("%s %s is not in openapi.json: %v", tt.method, tt.path, err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
			reqErr := openapi3filter.ValidateRequest(ctx, in)
			if (reqErr == nil) != tt.requestValid {
				t.Errorf("openapi.json accepts the request: %v, want %v (%v)", reqErr == nil, tt.requestValid, reqErr)
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: a.status, Header: a.header, Options: opts}
			out.SetBodyBytes(a.body)
			if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
				t.Errorf("answer %d %s does not match openapi.json: %v", a.status, a.body, err)
			}
			seen[tt.method+" "+route.Path+" "+strconv.Itoa(a.status)] = true
		})
	}

	t.Run("every documented answer was produced", func(t *testing.T) {
		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				for status := range op.Responses.Map() {
					if !notProduced[status] && !seen[method+" "+path+" "+status] {
						t.Errorf("no case produced %s %s %s", method, path, status)
					}
				}
			}
		}
	})
	t.Run("every /api route is documented", func(t *testing.T) {
		for _, r := range main.echo.Routes() {
			if !strings.HasPrefix(r.Path, "/api/") || r.Method == http.MethodHead {
				continue
			}
			item := doc.Paths.Value(r.Path)
			if item == nil || item.GetOperation(r.Method) == nil {
				t.Errorf("%s %s is served but not in server/openapi.json", r.Method, r.Path)
			}
		}
	})
}

// TestOpenAPIServed checks GET /api/openapi.json answers the embedded
// document to anyone, credential or not.
func TestOpenAPIServed(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.APIKeys = []string{"openapi-test-key-0123456789"} })
	a := do(t, http.MethodGet, ts.URL+"/api/openapi.json", "")
	if a.status != 200 || !bytes.Equal(a.body, openAPIDoc) || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/openapi.json: %d %s %.60q", a.status, a.header.Get("Content-Type"), a.body)
	}
	if !bytes.Equal(OpenAPI(), openAPIDoc) {
		t.Error("OpenAPI() differs from the served document")
	}
}
