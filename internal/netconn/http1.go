package netconn

import (
	"bytes"
	"net/http"
	"strconv"
)

// The transports that hijack a connection from net/http (SSE streams, held
// long-polls) answer on it by hand: net/http's writer, with its buffers and
// goroutine per connection, is what they hijack to be rid of. What they
// write is an HTTP/1.1 response, written here, once.

// Body is how a hand-written response's body is delimited.
type Body int

const (
	// BodySized: the header carries Content-Length (and Connection: close
	// when the connection is not kept).
	BodySized Body = iota
	// BodyChunked: Transfer-Encoding: chunked, each write one chunk
	// (FrameChunk), LastChunk ends the body; and Connection: close, since
	// the server closes the connection after that end. Said keep-alive, a
	// client that read the last chunk pools the connection, and its next
	// request on it (a POST, which is not retried) meets the close.
	BodyChunked
	// BodyUntilClose: the body ends when the connection closes (a client
	// that spoke HTTP/1.0 and cannot read chunks).
	BodyUntilClose
)

// AppendResponseHead appends a "200 OK" HTTP/1.1 response head with h's
// fields and body's framing fields to b.
func AppendResponseHead(b []byte, h http.Header, body Body) []byte {
	b = append(b, "HTTP/1.1 200 OK\r\n"...)
	buf := bytes.NewBuffer(b)
	_ = h.Write(buf) // a bytes.Buffer does not fail
	b = buf.Bytes()
	switch body {
	case BodyChunked:
		b = append(b, "Transfer-Encoding: chunked\r\nConnection: close\r\n"...)
	case BodyUntilClose:
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, '\r', '\n')
}

// ChunkRoom is what a chunk's writer leaves free before the chunk's data
// for its size line (up to 8 hex digits and CRLF), so that the data is
// built once, in place, before its size is known.
const ChunkRoom = 10

// LastChunk ends a chunked body; a proxy that reuses connections needs it.
const LastChunk = "0\r\n\r\n"

// FrameChunk turns b, which is a prefix of start bytes (the response head
// on a first write, or nothing), ChunkRoom bytes left free and the chunk's
// data, into the bytes to send: the prefix, the size line and the data,
// then CRLF. It works in b's array and returns the part of it to write.
func FrameChunk(b []byte, start int) []byte {
	data := len(b) - start - ChunkRoom
	var size [ChunkRoom]byte
	line := append(strconv.AppendInt(size[:0], int64(data), 16), '\r', '\n')
	at := start + ChunkRoom - len(line)
	copy(b[at:], line)
	copy(b[at-start:], b[:start]) // the prefix moves up to meet the size line
	return append(b[at-start:], '\r', '\n')
}
