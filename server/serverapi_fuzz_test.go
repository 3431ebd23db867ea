package server

import (
	"testing"
	"unicode/utf8"

	"github.com/waterspout/waterspout/session"
)

// FuzzDecodeControl checks that any disconnect or unsubscribe body either
// decodes to a request naming a user (and, to unsubscribe, a valid channel)
// or fails with a 4xx error, and never panics.
func FuzzDecodeControl(f *testing.F) {
	f.Add(jsonType, []byte(`{"user":"alice"}`), false)
	f.Add(jsonType, []byte(`{"user":"alice","client":"AbCdEfGhIjKlMnOp"}`), false)
	f.Add("", []byte(`{"user":"alice","channel":"room:1"}`), true)
	f.Add(jsonType, []byte(`{"user":"","channel":"x"}`), true)
	f.Add(formType, []byte(`user=alice`), false)
	f.Add(jsonType, []byte(`{"user":"a"} {}`), false)
	f.Add(jsonType, []byte(`{"user":"\uD800"}`), false)
	f.Fuzz(func(t *testing.T, contentType string, body []byte, unsubscribe bool) {
		req, err := decodeControl(contentType, body, unsubscribe)
		if !accepted(t, true, body, err) { // JSON only
			return
		}
		if req.User == "" || len(req.User) > maxUserLen || !utf8.ValidString(req.User) {
			t.Fatalf("user %q accepted", req.User)
		}
		if unsubscribe && (session.ValidateChannel(req.Channel) != nil || req.Client != "") {
			t.Fatalf("unsubscribe %+v accepted", req)
		}
		if !unsubscribe && req.Channel != "" {
			t.Fatalf("disconnect %+v accepted", req)
		}
	})
}
