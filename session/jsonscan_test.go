package session

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzScanJSONValue holds ScanJSONValue to its promise against
// encoding/json, on any text: what it accepts, json.Valid and ValidJSONText
// accept; the value it measured is whole (a JSON decoder reading the same
// text stops at the same byte); spaced is true exactly when json.Compact
// would change the value. And validJSONQuick, the fast path of
// Node.Publish's checks, vouches only for text the two full checks pass.
func FuzzScanJSONValue(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,-2.5e+3,true,false,null,"x"]}`, ` { "a" : [ 1 , 2 ] } `, `"caf\u00e9 \" \\ \/ \b\f\n\r\t"`,
		`"\ud83d\ude00"`, `"\udc00"`, "\"\xff\"", `01`, `-`, `1.`, `1e`, `[1,]`, `{"a"}`, `{"a":1,}`, `truex`,
		strings.Repeat("[", 70) + strings.Repeat("]", 70), `"a` + "\t" + `b"`, `12 34`, `{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if validJSONQuick(b) && (!json.Valid(b) || !ValidJSONText(b)) {
			t.Fatalf("validJSONQuick vouched for %q", b)
		}
		end, spaced, ok := ScanJSONValue(b)
		if !ok {
			return
		}
		value := b[:end]
		if !json.Valid(value) || !ValidJSONText(value) {
			t.Fatalf("ScanJSONValue accepted %q", value)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil || dec.InputOffset() != int64(end) {
			t.Fatalf("ScanJSONValue(%q) ended at %d; a decoder at %d (%v)", b, end, dec.InputOffset(), err)
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, value)
		start := skipSpace(b, 0)
		if changed := !bytes.Equal(compact.Bytes(), value[start:]); changed != spaced {
			t.Fatalf("ScanJSONValue(%q): spaced %v, json.Compact changes it: %v", b, spaced, changed)
		}
	})
}
