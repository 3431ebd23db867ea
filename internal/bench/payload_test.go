package bench

import (
	"testing"
)

func TestScanPayload(t *testing.T) {
	tests := []struct {
		name    string
		frame   string
		seq, at int64
		ok      bool
	}{
		{"bare payload (Nchan)", `{"s":7,"t":123456,"x":"a"}`, 7, 123456, true},
		{"waterspout message", `{"type":"message","channel":"c","offset":9,"epoch":"E","data":{"s":3,"t":42,"x":"y"},"time":1}`, 3, 42, true},
		{"warm-up", `{"s":0,"t":0,"x":"y"}`, 0, 0, true},
		{"no payload", `{"type":"ping"}`, 0, 0, false},
		{"missing t", `{"s":1,"x":2}`, 0, 0, false},
		{"negative seq", `{"s":-1,"t":2}`, 0, 0, false},
		{"seq too long", `{"s":1234567890123456789,"t":2}`, 0, 0, false},
		{"empty", ``, 0, 0, false},
		{"truncated", `{"s":12`, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, at, ok := scanPayload([]byte(tt.frame))
			if seq != tt.seq || at != tt.at || ok != tt.ok {
				t.Errorf("scanPayload(%s) = %d, %d, %v; want %d, %d, %v", tt.frame, seq, at, ok, tt.seq, tt.at, tt.ok)
			}
		})
	}
}

func TestAppendPayloadRoundTrip(t *testing.T) {
	for _, seq := range []int64{0, 1, 99999, 1 << 40} {
		b := appendPayload(nil, seq, seq*3+1)
		got, at, ok := scanPayload(b)
		if !ok || got != seq || at != seq*3+1 {
			t.Errorf("scanPayload(%s) = %d, %d, %v", b, got, at, ok)
		}
	}
}

func TestScanPosition(t *testing.T) {
	tests := []struct {
		name   string
		frame  string
		epoch  string
		offset int64
		ok     bool
	}{
		{"message", `{"type":"message","channel":"c","offset":9,"epoch":"Ab1","data":{"s":1,"t":2}}`, "Ab1", 9, true},
		{"data cannot fake it", `{"type":"message","channel":"c","data":{"offset":5,"epoch":"X"}}`, "", 0, false},
		{"empty epoch", `{"type":"message","offset":9,"epoch":"","data":1}`, "", 0, false},
		{"no offset", `{"type":"message","epoch":"E","data":1}`, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			epoch, offset, ok := scanPosition([]byte(tt.frame))
			if epoch != tt.epoch || offset != tt.offset || ok != tt.ok {
				t.Errorf("scanPosition = %q, %d, %v; want %q, %d, %v", epoch, offset, ok, tt.epoch, tt.offset, tt.ok)
			}
		})
	}
}

// FuzzScanPayload checks that frames from a server, whatever they hold,
// never crash the scanners, and that a payload the bench wrote is always
// found again inside any frame that wraps it.
func FuzzScanPayload(f *testing.F) {
	f.Add([]byte(`{"type":"message","channel":"c","offset":9,"epoch":"E","data":{"s":3,"t":42,"x":"y"}}`), int64(3), int64(42))
	f.Add([]byte(`{"s":1,"t":2}`), int64(0), int64(0))
	f.Add([]byte(`{"type":"disconnect","code":3001}`), int64(1), int64(1))
	f.Fuzz(func(t *testing.T, frame []byte, seq, at int64) {
		scanPayload(frame)
		scanPosition(frame)
		frameType(frame)
		if seq < 0 || at < 0 || seq >= 1e17 || at >= 1e17 {
			return
		}
		wrapped := append([]byte(`{"type":"message","data":`), appendPayload(nil, seq, at)...)
		if gotSeq, gotAt, ok := scanPayload(wrapped); !ok || gotSeq != seq || gotAt != at {
			t.Errorf("scanPayload(%s) = %d, %d, %v", wrapped, gotSeq, gotAt, ok)
		}
	})
}
