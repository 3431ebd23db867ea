package netconn

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// A hand-written head and chunks read back, through net/http's own reader,
// as the response that was meant: status, fields, framing and body, for a
// first chunk that carries the head and for later ones, empty and large.
func TestResponseHeadAndChunks(t *testing.T) {
	h := http.Header{"Content-Type": {"text/event-stream"}}
	var wire []byte
	first := append(AppendResponseHead(nil, h, BodyChunked), make([]byte, ChunkRoom)...)
	first = append(first, "data: 1\n\n"...)
	start := len(first) - ChunkRoom - len("data: 1\n\n")
	wire = append(wire, FrameChunk(first, start)...)
	want := "data: 1\n\n"
	for _, data := range []string{"x", strings.Repeat("y", 70000)} {
		b := append(make([]byte, ChunkRoom), data...)
		wire = append(wire, FrameChunk(b, 0)...)
		want += data
	}
	wire = append(wire, LastChunk...)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(wire)), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the chunked body: %v", err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" ||
		len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || !resp.Close || string(body) != want {
		t.Fatalf("read back %d %v te=%v close=%v body %d bytes", resp.StatusCode, resp.Header, resp.TransferEncoding, resp.Close, len(body))
	}

	sized := AppendResponseHead(nil, http.Header{"Content-Length": {"2"}}, BodySized)
	resp, err = http.ReadResponse(bufio.NewReader(bytes.NewReader(append(sized, "ok"...))), nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(resp.Body); string(body) != "ok" || resp.ContentLength != 2 {
		t.Fatalf("sized: body %q, length %d", body, resp.ContentLength)
	}
	closing := AppendResponseHead(nil, http.Header{}, BodyUntilClose)
	resp, err = http.ReadResponse(bufio.NewReader(bytes.NewReader(append(closing, "rest"...))), nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(resp.Body); string(body) != "rest" || !resp.Close {
		t.Fatalf("until close: body %q, close %v", body, resp.Close)
	}
}
