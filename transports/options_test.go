package transports

import (
	"testing"
	"time"
)

func TestDurationOption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		d, want time.Duration
		err     string
	}{
		{"zero takes the default", 0, time.Minute, ""},
		{"set is kept", time.Second, time.Second, ""},
		{"negative is refused", -time.Second, 0, "negative close grace -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DurationOption("close grace", tc.d, time.Minute)
			if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
				t.Fatalf("DurationOption(%v) = %v, %v; want %v, %q", tc.d, got, err, tc.want, tc.err)
			}
		})
	}
}
