package session

import (
	"reflect"
	"strings"
	"testing"
)

func TestCursorVectors(t *testing.T) {
	// These vectors are shared with client-js/test: both codecs must agree.
	tests := []struct {
		name string
		c    Cursor
		want string
	}{
		{"empty", Cursor{}, "AQA"},
		{"one", Cursor{"news": {"e1", 5}}, "AQEEbmV3cwJlMQU"},
		{"two sorted, multi-byte varint", Cursor{"b": {"E", 0}, "a": {"E", 300}}, "AQIBYQFFrAIBYgFFAA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Encode(); got != tt.want {
				t.Fatalf("Encode = %q, want %q", got, tt.want)
			}
			back, err := DecodeCursor(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.c) {
				t.Fatalf("Decode = %v, want %v", back, tt.c)
			}
		})
	}
}

func TestCursorRejectsGarbage(t *testing.T) {
	long := Cursor{}
	for i := 0; i < MaxCursorChannels+1; i++ {
		long[strings.Repeat("c", 1+i%200)+string(rune('a'+i%26))+itoa(i)] = Position{"E", 1}
	}
	tests := []struct{ name, in string }{
		{"not base64", "!!!"},
		{"padding", "AQA="},
		{"wrong version", "AgA"},
		{"truncated", "AQEEbmV3cwJlMQ"},
		{"trailing bytes", "AQEEbmV3cwJlMQUA"},
		{"bad channel char", Cursor{"a b": {"e", 1}}.Encode()},
		{"bad epoch", Cursor{"a": {"e!", 1}}.Encode()},
		{"empty epoch", Cursor{"a": {"", 1}}.Encode()},
		{"offset beyond 2^53", Cursor{"a": {"e", 1 << 53}}.Encode()},
		{"too long", strings.Repeat("A", MaxCursorLen+1)},
		{"too many channels", long.Encode()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := DecodeCursor(tt.in); err == nil {
				t.Fatalf("DecodeCursor(%q) = %v, want an error", tt.in, c)
			}
		})
	}
}

func itoa(i int) string {
	return string(rune('0'+i/100%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}

// FuzzDecodeCursor: any input either fails cleanly or decodes to a cursor
// that encodes back to an equivalent cursor.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"", "AQA", "AQEEbmV3cwJlMQU", "AQIBYQFFrAIBYgFFAA", "AgA", "////"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeCursor(s)
		if err != nil {
			return
		}
		again, err := DecodeCursor(c.Encode())
		if err != nil {
			t.Fatalf("re-decode of %q: %v", c.Encode(), err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("round trip changed %v to %v", c, again)
		}
	})
}

// TestCheckCursorFits: whatever positions a channel set reaches, its cursor
// decodes again; sets that could exceed the limit are refused up front.
func TestCheckCursorFits(t *testing.T) {
	long := strings.Repeat("c", MaxChannelLen-4)
	for _, n := range []int{1, 10, 20, 30, 128} {
		var chans []string
		c := Cursor{}
		for i := 0; i < n; i++ {
			ch := long + itoa(i)
			chans = append(chans, ch)
			c[ch] = Position{strings.Repeat("e", MaxBrokerEpochLen), 1<<53 - 1}
		}
		err := CheckCursorFits(chans)
		_, decErr := DecodeCursor(c.Encode())
		if (err == nil) != (decErr == nil) {
			t.Fatalf("%d long channels: CheckCursorFits says %v but the worst-case cursor decodes with %v", n, err, decErr)
		}
	}
	var short []string
	for i := 0; i < DefaultMaxChannels; i++ {
		short = append(short, "orders:"+itoa(i))
	}
	if err := CheckCursorFits(short); err != nil {
		t.Fatalf("the default channel limit with short names must fit: %v", err)
	}
}

func TestCursorAdvance(t *testing.T) {
	c := Cursor{"a": {"e", 1}}
	if c.Advance(Item{Frame: PingFrame}) || len(c) != 1 {
		t.Fatalf("a frame without a channel moved the cursor: %v", c)
	}
	if !c.Advance(Item{Channel: "a", Position: Position{"e", 2}}) || c["a"] != (Position{"e", 2}) {
		t.Fatalf("a message did not move its channel: %v", c)
	}
	if !c.Advance(Item{Channel: "b", Position: Position{"f", 0}}) || c["b"] != (Position{"f", 0}) {
		t.Fatalf("a subscribed frame did not add its channel: %v", c)
	}
}
