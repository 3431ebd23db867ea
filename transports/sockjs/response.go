package sockjs

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"time"
)

// responseWriter is what sockjs-go writes every response through. Its HTTP
// receivers write synchronously, under the SockJS session's lock, with no
// deadline of their own: a client that stops reading would block them, and
// with them the session's writer, forever.
//
// A streaming response lives for minutes, so one deadline set when the
// request starts would cut healthy streams. Instead every Write and Flush
// gets a fresh deadline of the write timeout. On HTTP/1 the deadline then
// stays until the next write, so that what net/http writes after the handler
// (the end of a chunked body) is bounded too; net/http clears it when the
// request is done, so a kept-alive connection does not carry it into its
// next request. On HTTP/2 it is cleared after each flush, because a stream
// whose deadline expires, even idle, is reset.
//
// sockjs-go asserts http.Flusher on the writer and gorilla asserts
// http.Hijacker; Unwrap lets http.ResponseController reach the server's own
// writer.
type responseWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	h2      bool
	// dirty is set when something was written after the last flush.
	dirty    bool
	hijacked bool
	// wrapConn, if set, wraps the connection of a WebSocket upgrade.
	wrapConn func(net.Conn) net.Conn
	// onWrite, if set, is called before every Write that is not part of
	// the prelude.
	onWrite func()
	// prelude is set while the response has not been flushed yet.
	prelude bool
	// onDone, if set, is called when the response has ended well: a
	// stream's connection is armed to abort when net/http closes it
	// (netconn.AbortOnClose), since net/http closes it inside a write
	// that failed, and disarmed here, so that a clean end closes, if at
	// all, gracefully.
	onDone func()
}

var (
	_ http.Flusher  = (*responseWriter)(nil)
	_ http.Hijacker = (*responseWriter)(nil)
)

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseWriter) WriteHeader(code int) {
	w.dirty = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.onWrite != nil && !w.prelude {
		w.onWrite()
	}
	w.dirty = true
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.ResponseWriter.Write(p)
}

func (w *responseWriter) Flush() { _ = w.flush() }

func (w *responseWriter) flush() error {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	err := w.rc.Flush()
	if w.h2 {
		_ = w.rc.SetWriteDeadline(time.Time{})
	}
	w.dirty = false
	w.prelude = false
	return err
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := w.rc.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	if w.wrapConn != nil {
		c = w.wrapConn(c)
	}
	return c, brw, nil
}

// finish runs when sockjs-go's handler has returned (nothing writes after
// that: its receivers are closed before the handler returns). What is still
// buffered goes out under a deadline, and on HTTP/1 what net/http writes
// last gets one too. When the request context has ended, the client is gone
// or a write failed: nothing is flushed.
func (w *responseWriter) finish(ctx context.Context) {
	if w.hijacked {
		return
	}
	ok := ctx.Err() == nil
	if w.dirty && ok {
		ok = w.flush() == nil
	}
	if ok && w.onDone != nil {
		w.onDone()
	}
	if !w.h2 || ctx.Err() != nil {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	}
}
