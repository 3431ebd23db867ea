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

func TestDuplicateName(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want "": no name is there twice
	}{
		{`{"type":"publish","channel":"a","data":{"channel":"b"}}`, ""}, // nested names are the data's own
		{`{"channel":"a","channel":"b"}`, "channel"},
		{`{"channel":"a","Channel":"b"}`, "Channel"},      // encoding/json matches names without regard to case
		{`{"channel":"a","\u0063hannel":"b"}`, "channel"}, // nor to escapes
		{`{"key":"a","\u212aey":"b"}`, "\u212aey"},        // the Kelvin sign folds to k
		{` { "a" : [1,{"a":2}] , "b":"}\"" , "a" : 3 } `, "a"},
		{`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"E":11}`, "E"}, // past eight names
		{`{}`, ""},
		{`[{"a":1,"a":2}]`, ""}, // not an object: the decoder refuses it
		{`{"a":"\"","b":{"c":"]}"},"b":1}`, "b"},
	} {
		got, dup := DuplicateName([]byte(tt.in))
		if dup != (tt.want != "") || got != tt.want {
			t.Errorf("DuplicateName(%s) = %q, %v; want %q", tt.in, got, dup, tt.want)
		}
	}
	// The names it calls one are one to encoding/json: the last value wins.
	var c Command
	if err := json.Unmarshal([]byte(`{"type":"ping","key":"first","\u212aEY":"second"}`), &c); err != nil || c.Key != "second" {
		t.Fatalf("encoding/json took %q (%v): the test's premise is wrong", c.Key, err)
	}
}

// FuzzDuplicateName holds DuplicateName against a plain reference: the
// top-level names of a valid object, read with encoding/json's tokenizer
// and compared pairwise with strings.EqualFold.
func FuzzDuplicateName(f *testing.F) {
	for _, s := range []string{`{"a":1,"A":2}`, `{"a":{"a":1},"b":[{"a":2}]}`, `{"\u0061":1,"a":2}`, `{"k":1,"\u212a":2}`, `{}`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var obj map[string]json.RawMessage
		if json.Unmarshal(b, &obj) != nil || obj == nil {
			return
		}
		names := topLevelNames(t, b)
		want := false
		for i := range names {
			for j := i + 1; j < len(names); j++ {
				if strings.EqualFold(names[i], names[j]) {
					want = true
				}
			}
		}
		if _, got := DuplicateName(b); got != want {
			t.Fatalf("DuplicateName(%q) = %v, want %v (names %q)", b, got, want, names)
		}
	})
}

// topLevelNames reads the names of the valid JSON object b, in order.
func topLevelNames(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if _, err := dec.Token(); err != nil { // '{'
		t.Fatal(err)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return names
}
