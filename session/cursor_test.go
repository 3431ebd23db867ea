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
		// The cheap check agrees with the full decode on every cursor
		// the full decode accepts.
		for name := range c {
			if !CursorNamesAny(s, []string{"no:such", name}) {
				t.Fatalf("CursorNamesAny(%q) misses %q", s, name)
			}
		}
		if _, ok := c["no:such"]; !ok && CursorNamesAny(s, []string{"no:such"}) {
			t.Fatalf("CursorNamesAny(%q) names a channel the cursor does not hold", s)
		}
	})
}

// TestCursorNamesAny: the poll budget's check finds a channel in a cursor,
// and refuses what is not one, without DecodeCursor's map.
func TestCursorNamesAny(t *testing.T) {
	raw := Cursor{"orders:1": {"e1", 5}, "news": {"e2", 0}}.Encode()
	many := make([]string, 20) // looked up in a set
	for i := range many {
		many[i] = "other:" + itoa(i)
	}
	tooMany := make([]string, MaxCursorChannels+1)
	copy(tooMany, []string{"news"})
	for _, tt := range []struct {
		raw   string
		chans []string
		want  bool
	}{
		{raw, []string{"news"}, true},
		{raw, []string{"other", "orders:1"}, true},
		{raw, []string{"orders:2", "new"}, false},
		{raw, nil, false},
		{raw, append(many, "news"), true},
		{raw, many, false},
		{raw, tooMany, false}, // more channels than a cursor may name
		{"", []string{"news"}, false},
		{raw[:len(raw)-2], []string{"orders:1"}, false}, // cut short
		{"!!!!", []string{"news"}, false},
		{strings.Repeat("A", MaxCursorLen+1), []string{"news"}, false},
	} {
		if got := CursorNamesAny(tt.raw, tt.chans); got != tt.want {
			t.Errorf("CursorNamesAny(%q, %q) = %v, want %v", tt.raw, tt.chans, got, tt.want)
		}
	}
}
