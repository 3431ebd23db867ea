package apiclient

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzErrorOf decodes error answers of any shape: whatever a proxy or a
// server sends, the error keeps the HTTP status, has a reason, and never
// a negative Retry-After.
func FuzzErrorOf(f *testing.F) {
	f.Add(429, []byte(`{"error":{"code":429,"reason":"rate limited"}}`), "1")
	f.Add(502, []byte(`<html>bad gateway</html>`), "")
	f.Add(503, []byte(`{"error":{"code":"x"}}`), "-5")
	f.Add(401, []byte(`{"error":null}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retryAfter}},
			Body: io.NopCloser(strings.NewReader(""))}
		e := errorOf(resp, body)
		if e.Status != status || e.RetryAfter < 0 {
			t.Fatalf("errorOf(%d, %q, %q) = %+v", status, body, retryAfter, e)
		}
		if e.Reason == "" && http.StatusText(status) != "" {
			t.Fatalf("no reason for %d %q", status, body)
		}
		_ = e.Error()
	})
}
