package session

import (
	"encoding/json"
	"strings"
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
		"{\"type\":\"publish\",\"channel\":\"a\",\"data\":1,\"key\":\"k\xff\"}",
		`{"type":"publish","channel":"a","data":1,"key":"k\ud800"}`,
		`{"type":"ping","id":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		cmds, err := DecodeCommands(in)
		if err == nil && !ValidJSONText(in) {
			t.Fatalf("frame %q that is not valid UTF-8 decoded", in) // its key or channel would have changed
		}
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

// TestDecodeCommandsRefusesInvalidText: a command whose text is not valid
// UTF-8 would have its key or channel silently changed by encoding/json.
func TestDecodeCommandsRefusesInvalidText(t *testing.T) {
	for _, in := range []string{
		"{\"type\":\"publish\",\"channel\":\"chat:a\",\"data\":1,\"key\":\"k\xff\"}",
		`{"type":"publish","channel":"chat:a","data":1,"key":"k\udc00"}`,
		"{\"type\":\"subscribe\",\"channel\":\"a\xfe\"}",
	} {
		_, err := DecodeCommands([]byte(in))
		if e := AsError(err); e.Code != 400 || !strings.Contains(e.Reason, "UTF-8") {
			t.Errorf("DecodeCommands(%q): %v, want 400 naming UTF-8", in, err)
		}
	}
	// Trailing data, including a stray closing bracket (json.Decoder.More
	// reports false before one).
	for _, in := range []string{`{"type":"ping","id":1}}`, `{"type":"ping","id":1}]`, `{"type":"ping","id":1} {}`} {
		_, err := DecodeCommands([]byte(in))
		if e := AsError(err); e.Code != 400 || !strings.Contains(e.Reason, "trailing") {
			t.Errorf("DecodeCommands(%q): %v, want 400 for trailing data", in, err)
		}
	}
	// A name twice, in any case or escape: another parser may keep the
	// first where encoding/json keeps the last.
	for _, in := range []string{`{"type":"subscribe","channel":"a","channel":"b"}`, `{"type":"subscribe","channel":"a","\u0043hannel":"b"}`} {
		_, err := DecodeCommands([]byte(in))
		if e := AsError(err); e.Code != 400 || !strings.Contains(e.Reason, "appears twice") {
			t.Errorf("DecodeCommands(%s): %v, want 400 for a name twice", in, err)
		}
	}
	_, err := DecodeCommands([]byte(`[1,2]`))
	if e := AsError(err); e.Code != 400 || strings.Contains(e.Reason, "Go") || strings.Contains(e.Reason, "session.") {
		t.Errorf("a JSON array: %v, want 400 in the protocol's terms", err)
	}
}

// TestDecodeCommandsPerFrame: PROTOCOL.md's 100 commands per frame; one more
// is a 400 and none of the frame's commands runs (nothing is decoded).
func TestDecodeCommandsPerFrame(t *testing.T) {
	frame := strings.Repeat(`{"type":"ping","id":1}`+"\n", maxCommandsPerFrame)
	if cmds, err := DecodeCommands([]byte(frame)); err != nil || len(cmds) != maxCommandsPerFrame {
		t.Fatalf("%d commands: %d decoded, %v", maxCommandsPerFrame, len(cmds), err)
	}
	cmds, err := DecodeCommands([]byte(frame + `{"type":"ping","id":2}`))
	if e := AsError(err); e.Code != 400 || cmds != nil {
		t.Errorf("%d commands: %d decoded, %v; want a 400 and none", maxCommandsPerFrame+1, len(cmds), err)
	}
}
