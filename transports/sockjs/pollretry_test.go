package sockjs

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestRetryPoll: a poll answered with sockjs-go's spurious 2010 is served
// again, and the client sees only the real answer; a 2010 that persists past
// the retries (a genuine second poll) reaches the client.
func TestRetryPoll(t *testing.T) {
	tests := []struct {
		name      string
		stillOpen int // how many times the handler answers 2010 first
		jsonp     bool
		want      string
		calls     int
	}{
		{"answered at once", 0, false, "a[\"x\"]\n", 1},
		{"2010 twice, then the answer", 2, false, "a[\"x\"]\n", 3},
		{"jsonp 2010 once", 1, true, "/**/cb(\"a[\\\"x\\\"]\\n\");\r\n", 2},
		{"genuine second poll", pollRetries + 5, false, "c[2010,\"Another connection still open\"]\n", pollRetries + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls++
				w.Header().Set("Content-Type", "application/javascript; charset=UTF-8")
				w.WriteHeader(http.StatusOK)
				frame := "a[\"x\"]\n"
				if calls <= tt.stillOpen {
					frame = "c[2010,\"Another connection still open\"]\n"
				}
				if tt.jsonp {
					if calls <= tt.stillOpen {
						frame = "/**/cb(\"c[2010,\\\"Another connection still open\\\"]\\n\");\r\n"
					} else {
						frame = "/**/cb(\"a[\\\"x\\\"]\\n\");\r\n"
					}
				}
				io.WriteString(w, frame)
				w.(http.Flusher).Flush()
			})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rw := &responseWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: 5 * time.Second}
				defer rw.finish(r.Context())
				retryPoll(rw, r, next)
			}))
			defer srv.Close()
			resp, err := http.Post(srv.URL, "text/plain", nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != tt.want || calls != tt.calls {
				t.Fatalf("client got %q after %d calls, want %q after %d", body, calls, tt.want, tt.calls)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/javascript; charset=UTF-8" {
				t.Fatalf("content type %q was lost", ct)
			}
		})
	}
}
