package wiretest

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/internal/wire"
)

// Reply is a raw HTTP answer.
type Reply struct {
	Status int
	Header http.Header
	Body   string
}

// Do sends one request to u with q: as the query of a GET, or as the form
// body of a POST.
func Do(ctx context.Context, client *http.Client, method, u string, q url.Values, header http.Header) (Reply, error) {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(q.Encode())
	} else if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return Reply{}, err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Reply{resp.StatusCode, resp.Header, string(b)}, err
}

// PollOnce makes one long-poll, GET u with q, through client (nil:
// http.DefaultClient) within ctx, and decodes its answer: a JSONP script
// when q names a callback. Anything but a 200 poll answer with a cursor
// fails the test.
func PollOnce(ctx context.Context, tb testing.TB, client *http.Client, u string, q url.Values) wire.PollAnswer {
	tb.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	r, err := Do(ctx, client, http.MethodGet, u, q, nil)
	if err != nil {
		tb.Fatalf("poll %s: %v", u, err)
	}
	a, err := wire.DecodePoll([]byte(r.Body), q.Get("callback"))
	if r.Status != http.StatusOK || err != nil || a.Cursor == nil {
		tb.Fatalf("poll %s: %d %s (%v), want a poll answer with a cursor", u, r.Status, r.Body, err)
	}
	return a
}
