package wiretest

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/waterspout/waterspout/internal/wire"
)

// PollOnce makes one long-poll, GET u with q, through client (nil:
// http.DefaultClient) within ctx, and decodes its answer. Anything but a
// 200 poll answer with a cursor fails the test.
func PollOnce(ctx context.Context, tb testing.TB, client *http.Client, u string, q url.Values) wire.PollAnswer {
	tb.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	r, err := Do(ctx, client, http.MethodGet, u, q, nil)
	if err != nil {
		tb.Fatalf("poll %s: %v", u, err)
	}
	a, err := wire.DecodePoll([]byte(r.Body), "")
	if r.Status != http.StatusOK || err != nil || a.Cursor == nil {
		tb.Fatalf("poll %s: %d %s (%v), want a poll answer with a cursor", u, r.Status, r.Body, err)
	}
	return a
}
