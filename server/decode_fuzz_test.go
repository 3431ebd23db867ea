package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/waterspout/waterspout/session"
)

const fuzzMaxData = 1 << 10

// accepted reports whether a decoder accepted body, failing t unless it
// either accepted it or refused it with a 4xx *session.Error. A JSON body
// (isJSON) that is not valid UTF-8 must be refused: encoding/json would have
// changed a key or name to U+FFFD.
func accepted(t *testing.T, isJSON bool, body []byte, err error) bool {
	t.Helper()
	if err != nil {
		var e *session.Error
		if !errors.As(err, &e) || e.Code < 400 || e.Code > 499 {
			t.Fatalf("error %v is not a 4xx *session.Error", err)
		}
		return false
	}
	if isJSON && !session.ValidJSONText(body) {
		t.Fatalf("JSON body %q that is not valid UTF-8 accepted", body)
	}
	return true
}

// FuzzDecodePublish checks that any body, JSON or form, either decodes to a
// request the node can take (valid channel, valid compact UTF-8 JSON within
// the limit, a short key) or fails with a 4xx error, and never panics.
func FuzzDecodePublish(f *testing.F) {
	f.Add(jsonType, []byte(`{"channel":"news","data":{"a":1},"key":"k"}`))
	f.Add("", []byte(`{"channel":"a:b#c","data":[1,"x",null]}`))
	f.Add(formType, []byte("channel=news&data=hello+%3Cb%3E"))
	f.Add(formType, []byte("channel=news&json=%7B%22a%22%3A1%7D&key=k"))
	f.Add(formType, []byte("channel=news&data=x&json=1"))
	f.Add("text/plain", []byte("hi"))
	f.Add(jsonType, []byte("{\"channel\":\"a\",\"data\":1,\"key\":\"k\xff\"}"))
	f.Add(jsonType, []byte(`{"channel":"a","data":1,"key":"k\ud800"}`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req, err := decodePublish(contentType, body, fuzzMaxData)
		if kind, _ := kindOf(contentType); !accepted(t, kind == bodyJSON, body, err) {
			return
		}
		if session.ValidateChannel(req.Channel) != nil {
			t.Fatalf("invalid channel %q accepted", req.Channel)
		}
		if !json.Valid(req.Data) || !utf8.Valid(req.Data) || len(req.Data) > fuzzMaxData {
			t.Fatalf("data %q accepted", req.Data)
		}
		for _, c := range req.Data {
			if c == '\n' || c == '\r' {
				t.Fatalf("data %q is not compact", req.Data)
			}
		}
		if len(req.Key) > session.MaxKeyLen || !utf8.ValidString(req.Key) {
			t.Fatalf("key %q accepted", req.Key)
		}
		// A form's data field is delivered as exactly its text.
		if kind, _ := kindOf(contentType); kind == bodyForm {
			form, _ := url.ParseQuery(string(body))
			if text, ok := form["data"]; ok {
				var got string
				if err := json.Unmarshal(req.Data, &got); err != nil || got != text[0] {
					t.Fatalf("form data %q delivered as %s", text[0], req.Data)
				}
			}
		}
	})
}

// FuzzDecodeBroadcast checks the broadcast decoder the same way.
func FuzzDecodeBroadcast(f *testing.F) {
	f.Add(jsonType, []byte(`{"channels":["a","b"],"data":{"x":1},"key":"k"}`))
	f.Add(jsonType, []byte(`{"channels":["a","a"],"data":1}`))
	f.Add(jsonType, []byte(`{"channels":[],"data":1}`))
	f.Add(formType, []byte(`channels=a`))
	f.Add(jsonType, []byte("{\"channels\":[\"a\"],\"data\":1,\"key\":\"k\xfe\"}"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req, err := decodeBroadcast(contentType, body, fuzzMaxData)
		if !accepted(t, true, body, err) { // JSON only
			return
		}
		if n := len(req.Channels); n == 0 || n > maxBroadcastChannels {
			t.Fatalf("%d channels accepted", n)
		}
		seen := map[string]bool{}
		for _, ch := range req.Channels {
			if seen[ch] {
				t.Fatalf("channel %q twice", ch)
			}
			seen[ch] = true
		}
		if !json.Valid(req.Data) || !utf8.Valid(req.Data) || len(req.Data) > fuzzMaxData || len(req.Key) > session.MaxKeyLen {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// FuzzDecodeBatch checks the batch decoder: any body either decodes to
// 1..maxBatchPublications publications that each pass what a publish body
// must (as FuzzDecodePublish checks) or fails with a 4xx error whose reason,
// when it is about one publication, names an index within the body's; it
// never panics.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(jsonType, []byte(`{"publications":[{"channel":"a","data":{"x":1},"key":"k"},{"channel":"a","data":2}]}`))
	f.Add(jsonType, []byte(`{"publications":[{"channel":"a","data":1},{"channel":"bad channel","data":1}]}`))
	f.Add(jsonType, []byte(`{"publications":[{"channel":"a","data":1,"Channel":"b"}]}`))
	f.Add(jsonType, []byte(`{"publications":[1,null,"x"]}`))
	f.Add(jsonType, []byte(`{"publications":[]}`))
	f.Add(formType, []byte(`channel=a&data=1`))
	f.Add(jsonType, []byte("{\"publications\":[{\"channel\":\"a\",\"data\":\"\xff\"}]}"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req, err := decodeBatch(contentType, body, fuzzMaxData)
		if !accepted(t, true, body, err) { // JSON only
			var e *session.Error
			if errors.As(err, &e) && strings.HasPrefix(e.Reason, "publications[") {
				var i int
				if _, scanErr := fmt.Sscanf(e.Reason, "publications[%d]:", &i); scanErr != nil || i < 0 || i >= maxBatchPublications {
					t.Fatalf("reason %q names no index of the body", e.Reason)
				}
			}
			return
		}
		if n := len(req.Publications); n == 0 || n > maxBatchPublications {
			t.Fatalf("%d publications accepted", n)
		}
		for i, p := range req.Publications {
			if session.ValidateChannel(p.Channel) != nil || !json.Valid(p.Data) || !utf8.Valid(p.Data) ||
				len(p.Data) > fuzzMaxData || bytes.ContainsAny(p.Data, "\r\n") ||
				len(p.Key) > session.MaxKeyLen || !utf8.ValidString(p.Key) {
				t.Fatalf("publications[%d] accepted: %+v", i, p)
			}
		}
	})
}
