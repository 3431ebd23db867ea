package wiretest

import (
	"net/url"
	"testing"

	"github.com/waterspout/waterspout/internal/wire"
)

// Types lists the frames' types, for a failure message.
func Types(fs []wire.Frame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Type
	}
	return out
}

// Seq is the integers from..to.
func Seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// Numbers returns the integers published to ch, from the message frames
// among fs, failing the test on a payload that is not one.
func Numbers(tb testing.TB, fs []wire.Frame, ch string) []int {
	tb.Helper()
	var out []int
	for _, f := range fs {
		if f.Type != "message" || f.Channel != ch {
			continue
		}
		n, err := f.Number()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// Query builds a query from key, value pairs; a key may repeat.
func Query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	return q
}
