package sse

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// On HTTP/1.1 the stream runs on a hijacked connection with chunked framing
// written here; on HTTP/2, which cannot be hijacked, it goes through the
// ResponseWriter. Either way the client sees the same events, in order, and
// its leaving closes the session.
func TestStreamOnEveryHTTPVersion(t *testing.T) {
	for _, tc := range []struct {
		name  string
		http2 bool
		proto int
	}{
		{"HTTP/1.1, hijacked", false, 1},
		{"HTTP/2, through the ResponseWriter", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{HTTP2: tc.http2})
			st := e.dial(t, query("channel", "c"), nil)
			if st.Resp.ProtoMajor != tc.proto {
				t.Fatalf("served over %s, want HTTP/%d", st.Resp.Proto, tc.proto)
			}
			if tc.proto == 1 && (len(st.Resp.TransferEncoding) != 1 || st.Resp.TransferEncoding[0] != "chunked") {
				t.Fatalf("transfer encoding %v, want chunked", st.Resp.TransferEncoding)
			}
			st.start(t, "c")
			const n = 300
			go func() {
				for i := 1; i <= n; i++ {
					_, _ = e.Node.Publish(context.Background(), "c", []byte(fmt.Sprint(i)), "")
				}
			}()
			fs, _ := st.messages(t, n)
			if got := numbers(t, fs, "c"); !slices.Equal(got, wiretest.Seq(1, n)) {
				t.Fatalf("got %v", got)
			}
			st.Close()
			e.WaitSessions(t, 0)
			if codes := e.Metrics.ClosedCodes("sse"); len(codes) != 1 || codes[0] != session.ClosedByClient.Code {
				t.Fatalf("session close codes %v, want [%d]", codes, session.ClosedByClient.Code)
			}
		})
	}
}

// An HTTP/1.0 client (nginx proxies with HTTP/1.0 unless told otherwise)
// cannot take chunks: the stream is delimited by the connection's end. When
// the server-wide context ends, the client is told 3001 and the connection
// closes.
func TestHTTP10StreamAndServerContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, envConfig{Transport: transports.Config{Context: ctx}})
	addr := strings.TrimPrefix(e.Srv.URL, "http://")
	c, err := wiretest.DialRaw(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /connect/sse?channel=c HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
	br := c.Reader()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) != 0 || !resp.Close ||
		resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("answer %d, transfer encoding %v, close %v, headers %v", resp.StatusCode, resp.TransferEncoding, resp.Close, resp.Header)
	}
	e.WaitSessions(t, 1)
	e.Publish(t, "c", 1, 2)
	var body strings.Builder
	for !strings.Contains(body.String(), `"data":2`) {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("body so far %q: %v", body.String(), err)
		}
		body.WriteString(line)
	}
	cancel()
	rest, err := io.ReadAll(br) // ends when the server closes
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`"type":"disconnect","code":%d`, session.DisconnectShutdown.Code)
	if !strings.Contains(string(rest), want) {
		t.Fatalf("after the server context ended: %q, want a disconnect %d", rest, session.DisconnectShutdown.Code)
	}
	if strings.Contains(body.String()+string(rest), "\r\n0\r\n") {
		t.Fatalf("chunk framing in an HTTP/1.0 body: %q", body.String())
	}
	e.WaitSessions(t, 0)
}
