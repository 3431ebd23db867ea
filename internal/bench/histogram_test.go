package bench

import (
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	// Every value falls in a bucket whose lower bound is at most the value
	// and within 1/64 of it.
	for _, v := range []int64{0, 1, 63, 127, 128, 129, 1000, 65535, 1 << 20, 123456789, 1 << 44} {
		i := bucketOf(v)
		lo := lowerBound(i)
		if lo > v || float64(v-lo) > float64(v)/64+1 {
			t.Errorf("value %d: bucket %d has lower bound %d", v, i, lo)
		}
		if i+1 < histBuckets && lowerBound(i+1) <= v {
			t.Errorf("value %d: next bucket %d starts at %d", v, i+1, lowerBound(i+1))
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name     string
		values   []time.Duration
		q        float64
		want     time.Duration
		tolerant bool
	}{
		{"empty", nil, 0.5, 0, false},
		{"one", []time.Duration{5 * time.Millisecond}, 0.99, 5 * time.Millisecond, true},
		{"median", []time.Duration{1 * time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}, 0.5, 2 * time.Millisecond, true},
		{"p99 of 100", ramp(100), 0.99, 99 * time.Millisecond, true},
		{"max", ramp(100), 1, 100 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			got := h.Quantile(tt.q)
			diff := tt.want - got
			if diff < 0 || (tt.tolerant && float64(diff) > float64(tt.want)/64) || (!tt.tolerant && diff != 0) {
				t.Errorf("Quantile(%v) = %v, want %v (within 1/64 below)", tt.q, got, tt.want)
			}
			if n := h.Count(); n != uint64(len(tt.values)) {
				t.Errorf("Count = %d, want %d", n, len(tt.values))
			}
		})
	}
}

func ramp(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}
