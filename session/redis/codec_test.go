package redis

import (
	"fmt"
	"testing"

	"github.com/waterspout/waterspout/session"
)

// encodePublication is the Go twin of the scripts' packing, for tests.
func encodePublication(p *session.Publication) string {
	return fmt.Sprintf("%d:%s:%d:%d:%s%s", p.Offset, p.Epoch, p.Time, len(p.Key), p.Key, p.Data)
}

func TestDecodePublication(t *testing.T) {
	tests := []struct {
		name, in string
		want     *session.Publication // nil: an error
	}{
		{"no key", "7:ab_C-9:1700000000123:0:{\"a\":1}",
			&session.Publication{Offset: 7, Epoch: "ab_C-9", Time: 1700000000123, Data: []byte(`{"a":1}`)}},
		{"key with colons", "1:e:0:5:a:b:c\"x:y\"",
			&session.Publication{Offset: 1, Epoch: "e", Key: "a:b:c", Data: []byte(`"x:y"`)}},
		{"unicode key", "2:e:5:8:ключ0", &session.Publication{Offset: 2, Epoch: "e", Time: 5, Key: "ключ", Data: []byte(`0`)}},
		{"empty", "", nil},
		{"header only", "1:e:0:0:", nil},
		{"offset zero", "0:e:0:0:1", nil},
		{"negative offset", "-1:e:0:0:1", nil},
		{"offset overflow", "18446744073709551616:e:0:0:1", nil},
		{"bad epoch", "1:e!:0:0:1", nil},
		{"empty epoch", "1::0:0:1", nil},
		{"long epoch", fmt.Sprintf("1:%065d:0:0:1", 0), nil},
		{"negative time", "1:e:-5:0:1", nil},
		{"key longer than the rest", "1:e:0:9:abc", nil},
		{"key eats the data", "1:e:0:3:abc", nil},
		{"missing field", "1:e:0", nil},
		{"signed key length", "1:e:0:+1:a1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := decodePublication("ch", tt.in)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("decoded %+v, want an error", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Channel = "ch"
			if p.Channel != "ch" || p.Offset != tt.want.Offset || p.Epoch != tt.want.Epoch || p.Time != tt.want.Time ||
				p.Key != tt.want.Key || string(p.Data) != string(tt.want.Data) {
				t.Fatalf("decoded %+v, want %+v", p, tt.want)
			}
		})
	}
}

// FuzzDecodePublication feeds arbitrary pub/sub payloads to the decoder: it
// must not panic, and what it accepts must be a well-formed publication that
// survives a round trip.
func FuzzDecodePublication(f *testing.F) {
	f.Add("1:abcdEFGH:1700000000000:0:{}")
	f.Add("12:e-_:1:3:k:1\"data with : colons\"")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := decodePublication("ch", s)
		if err != nil {
			return
		}
		if p.Offset == 0 || !session.ValidEpoch(p.Epoch) || p.Time < 0 || len(p.Data) == 0 || p.Channel != "ch" {
			t.Fatalf("accepted a malformed publication %+v from %q", p, s)
		}
		again, err := decodePublication("ch", encodePublication(p))
		if err != nil {
			t.Fatalf("round trip of %q: %v", s, err)
		}
		if again.Offset != p.Offset || again.Epoch != p.Epoch || again.Time != p.Time || again.Key != p.Key || string(again.Data) != string(p.Data) {
			t.Fatalf("round trip of %q: %+v, then %+v", s, p, again)
		}
	})
}
