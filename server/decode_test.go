package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestJSONBodiesMustBeUTF8 is issue 21 item 3: encoding/json reads invalid
// UTF-8 (and \u escapes of lone surrogates) as U+FFFD, so "k\xff" and
// "k\xfe" became one idempotency key and the second publication was
// answered as a duplicate and never delivered. Every field of every JSON
// body is now refused with 400 instead.
func TestJSONBodiesMustBeUTF8(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tt := range []struct{ name, path, body, field string }{
		{"publish key", "/api/publish", "{\"channel\":\"a\",\"data\":1,\"key\":\"k\xff\"}", "key"},
		{"publish key, another byte", "/api/publish", "{\"channel\":\"a\",\"data\":1,\"key\":\"k\xfe\"}", "key"},
		{"publish key, lone surrogate", "/api/publish", `{"channel":"a","data":1,"key":"k\ud800"}`, "key"},
		{"publish channel", "/api/publish", "{\"channel\":\"a\xff\",\"data\":1}", "channel"},
		{"publish data", "/api/publish", "{\"channel\":\"a\",\"data\":\"\xff\"}", "data"},
		{"publish data, lone surrogate", "/api/publish", `{"channel":"a","data":"\udc00"}`, "data"},
		{"broadcast key", "/api/broadcast", "{\"channels\":[\"a\"],\"data\":1,\"key\":\"k\xff\"}", "key"},
		{"broadcast channels", "/api/broadcast", "{\"channels\":[\"a\xff\"],\"data\":1}", "channels"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := postJSON(t, ts.URL+tt.path, tt.body)
			if a.status != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", a.status, a.body)
			}
			if r := a.apiErr(t).Reason; !strings.Contains(r, tt.field) || !strings.Contains(r, "UTF-8") {
				t.Errorf("reason %q, want it to name %s and UTF-8", r, tt.field)
			}
		})
	}
	// Nothing was published: a valid key is new, and is delivered.
	sess := subscriber(t, ts.Server, "a")
	if a := postJSON(t, ts.URL+"/api/publish", `{"channel":"a","data":1,"key":"k"}`); a.status != 200 || a.header.Get(duplicateHeader) != "" {
		t.Fatalf("valid key after refused ones: %d %v %s", a.status, a.header, a.body)
	}
	readUntil(t, sess, func(f frame) bool { return f.Type == "message" && f.Key == "k" })
}

// TestAPIErrorsPeopleCanActOn is issue 21 item 9 for the API: reasons name
// what to change in the request, never a Go type, and are not cut.
func TestAPIErrorsPeopleCanActOn(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tt := range []struct {
		name, path, contentType, body string
		want                          []string
	}{
		{"array body", "/api/publish", jsonType, `[1,2]`, []string{"JSON array", `{"channel":"news","data":{"text":"hi"}}`}},
		{"string channel is a number", "/api/publish", jsonType, `{"channel":5,"data":1}`, []string{"field channel", "a string"}},
		{"channels is a string", "/api/broadcast", jsonType, `{"channels":"a","data":1}`, []string{"field channels", "an array of strings"}},
		{"syntax error", "/api/publish", jsonType, "{\"channel\":\"a\",\n\"data\":}", []string{"line 2"}},
		{"empty body", "/api/publish", jsonType, ``, []string{"empty"}},
		{"unknown field", "/api/publish", jsonType, `{"channel":"a","data":1,"kee":"x"}`, []string{`unknown field "kee"`}},
		{"accented channel", "/api/publish", jsonType, `{"channel":"café","data":1}`, []string{`'é' at character 4`, "allowed"}},
		{"JSON sent as a form by curl -d", "/api/publish", formType, `{"channel":"a","data":1}`, []string{"Content-Type: application/json"}},
		{"form without channel", "/api/publish", formType, `data=hi`, []string{"no channel field"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, http.MethodPost, ts.URL+tt.path, tt.body, "Content-Type", tt.contentType)
			if a.status != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", a.status, a.body)
			}
			r := a.apiErr(t).Reason
			for _, w := range tt.want {
				if !strings.Contains(r, w) {
					t.Errorf("reason %q, want it to contain %q", r, w)
				}
			}
			for _, leak := range []string{"Go value", "struct", "json:", "Ã"} {
				if strings.Contains(r, leak) {
					t.Errorf("reason %q shows %q", r, leak)
				}
			}
		})
	}
}
