package sse

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

func publishEnv(t *testing.T) *testEnv {
	return newEnv(t, envConfig{
		Node: session.Config{
			Limits: session.Limits{MaxMessageBytes: 1024},
			Namespaces: []session.Namespace{{
				Name: "chat", ClientPublish: true, Anonymous: true, HistorySize: 10, HistoryTTL: time.Minute,
			}},
		},
		Transport: transports.Config{Authenticate: func(r *http.Request, _ *session.Session) error {
			switch r.URL.Query().Get("token") {
			case "", "good":
				return nil
			}
			return session.DisconnectInvalidToken
		}},
	})
}

// post sends a client publish and returns the status and body.
func (e *testEnv) post(t *testing.T, method, query, body string, header map[string]string) (int, string) {
	t.Helper()
	h := http.Header{}
	for k, v := range header {
		h.Set(k, v)
	}
	r := wiretest.Request(t, e.Srv.Client(), method, e.Srv.URL+"/connect/publish"+query, body, h)
	return r.Status, r.Body
}

func TestPublish(t *testing.T) {
	e := publishEnv(t)
	st := e.dial(t, query("channel", "chat:room"), nil)
	st.start(t, "chat:room")

	status, body := e.post(t, http.MethodPost, "", `{"channel":"chat:room","data":{"text":"hi"},"key":"k1"}`, nil)
	if status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	var ans struct {
		Channel string
		Offset  uint64
		Epoch   string
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil || ans.Channel != "chat:room" || ans.Offset != 1 || ans.Epoch == "" {
		t.Fatalf("answer %s (%v), want chat:room at offset 1", body, err)
	}
	fs, _ := st.messages(t, 1)
	if string(fs[0].Data) != `{"text":"hi"}` || fs[0].Epoch != ans.Epoch {
		t.Errorf("subscriber got %+v", fs[0])
	}
	// The same key again answers the original and delivers nothing.
	status, again := e.post(t, http.MethodPost, "", `{"channel":"chat:room","data":{"text":"hi"},"key":"k1"}`, nil)
	if status != 200 || again != body {
		t.Errorf("repeated key: %d %s, want the original %s", status, again, body)
	}
	e.Publish(t, "chat:room", 2, 2)
	if fs, _ := st.messages(t, 1); wiretest.Number(t, fs[0]) != 2 {
		t.Errorf("after a repeated key got %s, want the next publication only", fs[0].Data)
	}
	e.WaitSessions(t, 1) // publish sessions do not linger
}

func TestPublishRefusals(t *testing.T) {
	e := publishEnv(t)
	big := `{"channel":"chat:room","data":"` + strings.Repeat("x", 20<<10) + `"}`
	for _, tc := range []struct {
		name, method, query, body string
		header                    map[string]string
		status                    int
	}{
		{"namespace without client publish", "POST", "", `{"channel":"news","data":1}`, nil, 403},
		{"not JSON", "POST", "", `channel=chat:room&data=1`, nil, 400},
		{"two objects", "POST", "", `{"channel":"chat:room","data":1}{}`, nil, 400},
		{"a brace after the object", "POST", "", `{"channel":"chat:room","data":1}}`, nil, 400},
		{"a bracket after the object", "POST", "", `{"channel":"chat:room","data":1} ]`, nil, 400},
		{"no data", "POST", "", `{"channel":"chat:room"}`, nil, 400},
		{"invalid channel", "POST", "", `{"channel":"a b","data":1}`, nil, 400},
		{"a name twice", "POST", "", `{"channel":"chat:room","CHANNEL":"chat:other","data":1}`, nil, 400},
		// encoding/json would read both keys as "k\uFFFD", and the second
		// publication would be answered as a duplicate and never delivered.
		{"key not UTF-8", "POST", "", "{\"channel\":\"chat:room\",\"data\":1,\"key\":\"k\xff\"}", nil, 400},
		{"key a lone surrogate", "POST", "", `{"channel":"chat:room","data":1,"key":"k\ud800"}`, nil, 400},
		{"data not UTF-8", "POST", "", "{\"channel\":\"chat:room\",\"data\":\"\xfe\"}", nil, 400},
		{"data over maxMessageBytes", "POST", "", `{"channel":"chat:room","data":"` + strings.Repeat("x", 2000) + `"}`, nil, 413},
		{"body over the limit", "POST", "", big, nil, 413},
		{"invalid token in the body", "POST", "", `{"channel":"chat:room","data":1,"token":"forged"}`, nil, 401},
		{"invalid token in the query", "POST", "?token=forged", `{"channel":"chat:room","data":1}`, nil, 401},
		{"origin not allowed", "POST", "", `{"channel":"chat:room","data":1}`, map[string]string{"Origin": "http://evil.example"}, 403},
		{"GET", "GET", "", "", nil, 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.post(t, tc.method, tc.query, tc.body, tc.header)
			if status != tc.status {
				t.Fatalf("status %d %s, want %d", status, body, tc.status)
			}
			if got := errorBody(t, body); got.Code != tc.status || got.Reason == "" {
				t.Errorf("body %s", body)
			}
			e.WaitSessions(t, 0)
		})
	}
}

func TestPublishTokenAndCORS(t *testing.T) {
	e := publishEnv(t)
	t.Run("good token in the body", func(t *testing.T) {
		if status, body := e.post(t, "POST", "?token=forged", `{"channel":"chat:a","data":1,"token":"good"}`, nil); status != 200 {
			t.Errorf("%d %s: the body's token should be the one checked", status, body)
		}
	})
	t.Run("allowed origin", func(t *testing.T) {
		r := wiretest.Request(t, e.Srv.Client(), http.MethodPost, e.Srv.URL+"/connect/publish", `{"channel":"chat:a","data":2}`,
			http.Header{"Origin": {wiretest.AllowedOrigin}})
		if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != wiretest.AllowedOrigin ||
			r.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("%d %v", r.Status, r.Header)
		}
	})
	t.Run("preflight", func(t *testing.T) {
		status, _ := e.post(t, "OPTIONS", "", "", map[string]string{"Origin": wiretest.AllowedOrigin, "Access-Control-Request-Method": "POST"})
		if status != 204 {
			t.Errorf("preflight %d, want 204", status)
		}
	})
}

// FuzzDecodeClientPublish: any body either fails with a 400 or yields data that is
// valid JSON (or absent, which the node refuses). Seeds: testdata/fuzz.
func FuzzDecodeClientPublish(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeClientPublish(body)
		if err != nil {
			if e := session.AsError(err); e.Code != 400 {
				t.Fatalf("error %v, want a 400", err)
			}
			return
		}
		if req.Data != nil && !json.Valid(req.Data) {
			t.Fatalf("accepted data %q that is not JSON", req.Data)
		}
	})
}

// TestPublishAuthenticatorPanic: a panic in the authenticator answers the
// client publish 500 and closes the session it opened (it used to stay open,
// holding up a shutdown).
func TestPublishAuthenticatorPanic(t *testing.T) {
	e := newEnv(t, envConfig{
		Node: session.Config{Namespaces: []session.Namespace{{Name: "chat", ClientPublish: true, Anonymous: true}}},
		Transport: transports.Config{Authenticate: func(*http.Request, *session.Session) error {
			panic("authenticator bug")
		}},
	})
	status, body := e.post(t, http.MethodPost, "", `{"channel":"chat:room","data":1,"token":"t"}`, nil)
	if status != http.StatusInternalServerError || !strings.Contains(body, "internal error") {
		t.Fatalf("publish with a panicking authenticator: %d %s, want 500 internal error", status, body)
	}
	if n := e.Node.SessionCount(); n != 0 {
		t.Fatalf("%d sessions left after the panic, want 0", n)
	}
}
