package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/internal/wire"
)

// FuzzListenFrame feeds listen's frame handler what a server (or anything
// in its place) may send: lines of arbitrary bytes. It must never panic,
// and what it prints must never go back within a channel's epoch: a
// repeated or older offset is dropped, not printed twice.
func FuzzListenFrame(f *testing.F) {
	f.Add([]byte(`{"type":"hello","session":"s","ping":25}
{"type":"subscribed","channel":"news","epoch":"e1","offset":0}
{"type":"message","channel":"news","offset":1,"epoch":"e1","data":{"a":1}}
{"type":"message","channel":"news","offset":1,"epoch":"e1","data":{"a":1}}
{"type":"message","channel":"news","offset":3,"epoch":"e1","data":3}`))
	f.Add([]byte(`{"type":"subscribed","channel":"news","epoch":"e2","offset":0,"recovered":false}
{"type":"message","channel":"news","offset":1,"epoch":"e2","data":null}
{"type":"disconnect","code":3001,"reason":"shutdown","reconnect":true}`))
	f.Add([]byte(`{"type":"message","channel":"news","offset":18446744073709551615,"epoch":"e","data":"x"}`))
	f.Add([]byte(`{"type":"error","code":403,"reason":"no"}`))
	f.Add([]byte(`{"type":`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		l := &listener{
			transport: "ws", channels: []string{"news"},
			pos: map[string]wire.Position{"news": {Epoch: "e1", Offset: 0}}, resuming: map[string]wire.Position{},
			out: json.NewEncoder(&out), log: io.Discard,
		}
		_ = l.handleFrames(in) // an error would end the connection here
		last := map[string]uint64{}
		for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			if line == "" {
				continue
			}
			var m struct {
				Channel, Epoch string
				Offset         uint64
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("printed a line that is not JSON: %q", line)
			}
			k := m.Channel + "\x00" + m.Epoch
			if prev, ok := last[k]; ok && m.Offset <= prev {
				t.Fatalf("printed offset %d of %s after %d", m.Offset, k, prev)
			}
			last[k] = m.Offset
		}
	})
}
