package session

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeCommands: any frame either fails with a 400 or decodes into
// commands that re-encode as valid JSON. Nothing panics.
func FuzzDecodeCommands(f *testing.F) {
	for _, s := range []string{
		`{"type":"subscribe","id":1,"channel":"news"}`,
		`{"type":"subscribe","id":1,"channel":"news","since":{"epoch":"abc","offset":5}}` + "\n" + `{"type":"ping","id":2}`,
		`{"type":"publish","id":3,"channel":"chat:1","data":{"a":[1,2,3]}}`,
		`{"type":"auth","id":4,"token":"x.y.z"}`,
		`{"type":`, `[]`, `null`, "\n\n", `{"id":-1}`, `{"type":"ping","id":1e99}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		cmds, err := DecodeCommands(in)
		if err != nil {
			if AsError(err).Code != 400 {
				t.Fatalf("decode error with code %d", AsError(err).Code)
			}
			return
		}
		for _, c := range cmds {
			if c.Type == "" {
				t.Fatal("decoded a command without type")
			}
			if _, err := json.Marshal(c); err != nil {
				t.Fatalf("decoded command does not re-encode: %v", err)
			}
		}
	})
}
