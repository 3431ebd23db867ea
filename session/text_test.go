package session

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidJSONText(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{`{"key":"k"}`, true},
		{`{"key":"café ☕ 😀"}`, true},
		{`{"key":"\u00e9\uD83D\uDE00"}`, true},     // é and a surrogate pair
		{`{"key":"\\ud800"}`, true},                // an escaped backslash, then the text ud800
		{`{"key":"\ufffd"}`, true},                 // U+FFFD written on purpose
		{"{\"key\":\"k\xff\"}", false},             // invalid UTF-8
		{"{\"key\":\"k\xfe\"}", false},             // the key issue 21 merged with the one above
		{"{\"key\":\"\xed\xa0\x80\"}", false},      // a surrogate encoded in UTF-8
		{`{"key":"k\ud800"}`, false},               // a lone high surrogate
		{`{"key":"k\udc00"}`, false},               // a lone low surrogate
		{`{"key":"\ud800\u0041"}`, false},          // a high surrogate followed by no low one
		{`{"key":"\ud800"}`, false},                // at the end of the string
		{`{"data":{"text":"\uDBFF\uDFFF"}}`, true}, // U+10FFFF
	} {
		if got := ValidJSONText([]byte(tt.in)); got != tt.want {
			t.Errorf("ValidJSONText(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzValidJSONText checks the promise callers rely on: a JSON string that
// passes decodes without encoding/json replacing anything by U+FFFD.
func FuzzValidJSONText(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud800"`, `"\ud83d\ude00"`, "\"\xff\"", `"\\u0041"`, `"\ufffd"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s string
		if json.Unmarshal(b, &s) != nil || !ValidJSONText(b) {
			return
		}
		written := strings.Count(string(b), "\uFFFD") + strings.Count(strings.ToLower(string(b)), `\ufffd`)
		if got := strings.Count(s, "\uFFFD"); got > written || !utf8.ValidString(s) {
			t.Fatalf("%q passed but decodes to %q with %d U+FFFD (%d written)", b, s, got, written)
		}
	})
}
