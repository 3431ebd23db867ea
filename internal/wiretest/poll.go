package wiretest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/waterspout/waterspout/session"
)

// PollAnswer is a decoded long-poll answer: messages and cursor, or error.
type PollAnswer struct {
	Messages []Frame        `json:"messages"`
	Cursor   *string        `json:"cursor"`
	Error    *session.Error `json:"error"`
}

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

// DecodePoll decodes a poll answer's body. With a callback the body must be
// the JSONP call /**/callback(...); and its argument is decoded.
func DecodePoll(body []byte, callback string) (PollAnswer, error) {
	if callback != "" {
		prefix, suffix := "/**/"+callback+"(", ");"
		b := bytes.TrimSpace(body)
		if !bytes.HasPrefix(b, []byte(prefix)) || !bytes.HasSuffix(b, []byte(suffix)) {
			return PollAnswer{}, fmt.Errorf("not a JSONP call of %s: %.80q", callback, body)
		}
		body = b[len(prefix) : len(b)-len(suffix)]
	}
	var a PollAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("poll answer %.200q: %w", body, err)
	}
	if a.Error == nil && (a.Messages == nil || a.Cursor == nil) {
		return a, fmt.Errorf("poll answer %.200q lacks messages or cursor", body)
	}
	return a, nil
}
