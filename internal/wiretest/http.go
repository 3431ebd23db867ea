package wiretest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/internal/wire"
)

// Request sends one request to u, with body (none when empty) and header,
// through client (nil: http.DefaultClient), and reads the whole answer
// within WaitLimit. Not getting an answer fails the test.
func Request(tb testing.TB, client *http.Client, method, u, body string, header http.Header) Reply {
	tb.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading the answer: %v", method, u, err)
	}
	return Reply{resp.StatusCode, resp.Header, string(b)}
}

// CheckHeaders reports each header of want that h does not have with
// exactly that value.
func CheckHeaders(tb testing.TB, h http.Header, want map[string]string) {
	tb.Helper()
	for k, v := range want {
		if got := h.Get(k); got != v {
			tb.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

// Number returns a message frame's integer payload, failing the test on a
// payload that is not one.
func Number(tb testing.TB, f wire.Frame) int {
	tb.Helper()
	n, err := f.Number()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
