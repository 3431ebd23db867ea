package wiretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/waterspout/waterspout/internal/wire"
)

// Stream is one connection over any transport as a sequence of frames,
// filled by a reader goroutine. Next returns the frames read before an
// error first, then the error.
type Stream struct {
	frames chan wire.Frame
	errc   chan error
	closer func()
	once   sync.Once
}

// ErrTimeout is Next's error when no frame came in time.
var ErrTimeout = errors.New("no frame in time")

// ClosedError is how a Stream reports the end of a connection with a code:
// a WebSocket close code, or a poll's disconnect frame.
type ClosedError struct{ Code int }

func (e ClosedError) Error() string { return fmt.Sprintf("closed with %d", e.Code) }

// HTTPError is a refusal: an answer other than 200.
type HTTPError struct{ Status int }

func (e HTTPError) Error() string { return fmt.Sprintf("HTTP %d", e.Status) }

// NewStream returns an empty stream that closer ends.
func NewStream(closer func()) *Stream {
	return &Stream{frames: make(chan wire.Frame, 100000), errc: make(chan error, 1), closer: closer}
}

// Push adds a frame; only the reader goroutine calls it.
func (s *Stream) Push(f wire.Frame) { s.frames <- f }

// Fail ends the stream with err; only the first error counts.
func (s *Stream) Fail(err error) {
	select {
	case s.errc <- err:
	default:
	}
}

// Close ends the connection.
func (s *Stream) Close() { s.once.Do(s.closer) }

// Next returns the next frame, or the error that ended the stream, or
// ErrTimeout after d.
func (s *Stream) Next(d time.Duration) (wire.Frame, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case f := <-s.frames:
		return f, nil
	default:
	}
	select {
	case f := <-s.frames:
		return f, nil
	case err := <-s.errc:
		// Frames queued before the error still count.
		select {
		case f := <-s.frames:
			s.errc <- err
			return f, nil
		default:
		}
		return wire.Frame{}, err
	case <-t.C:
		return wire.Frame{}, ErrTimeout
	}
}

// StreamWS reads conn's messages into a Stream; a close ends it with a
// ClosedError. decode turns one message into frames (wire.DecodeFrames for
// WaterSpout's WebSocket; SockJS wraps them).
func StreamWS(conn *websocket.Conn, decode func([]byte) ([]wire.Frame, error)) *Stream {
	s := NewStream(func() { conn.Close() })
	go s.read(func() ([]byte, error) {
		_, data, err := conn.ReadMessage()
		if ce := (*websocket.CloseError)(nil); errors.As(err, &ce) {
			err = ClosedError{ce.Code}
		}
		return data, err
	}, decode)
	return s
}

// read is a Stream's reader: it pushes the frames decode finds in each
// unit next reads (a WebSocket message, an SSE event's data, a SockJS
// line), until either fails, which ends the stream with that error.
func (s *Stream) read(next func() ([]byte, error), decode func([]byte) ([]wire.Frame, error)) {
	for {
		data, err := next()
		if err != nil {
			s.Fail(err)
			return
		}
		fs, err := decode(data)
		for _, f := range fs {
			s.Push(f)
		}
		if err != nil {
			s.Fail(err)
			return
		}
	}
}

// OpenSSE opens an event stream at u and reads its events' frames into a
// Stream. An answer other than 200 is OpenStream's error (an HTTPError).
func OpenSSE(client *http.Client, u string, header http.Header) (*Stream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := OpenStream(ctx, client, http.MethodGet, u, header)
	if err != nil {
		cancel()
		return nil, err
	}
	s := NewStream(func() { cancel(); resp.Body.Close() })
	r := wire.NewSSEReader(resp.Body)
	go s.read(func() ([]byte, error) {
		ev, err := r.Next()
		return []byte(ev.Data), err
	}, wire.DecodeFrames)
	return s, nil
}

// PollLoop long-polls u with q (and callback, for JSONP), each poll from
// the previous answer's cursor, into a Stream. An empty answer (the held
// poll timed out) is reported as a ping frame, since that answer is what
// keeps an idle long-poll client and its proxies alive; a disconnect frame
// ends the stream with a ClosedError. The first poll's refusal is returned.
// Like client-js, every poll after the first sends the session id of the
// first answer's hello as "client", which names the poller in presence.
func PollLoop(client *http.Client, u string, q url.Values, callback string) (*Stream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := NewStream(cancel)
	if callback != "" {
		q.Set("callback", callback)
	}
	first := make(chan error, 1)
	go func() {
		for n := 0; ; n++ {
			a, err := pollOnce(ctx, client, u, q, callback)
			if n == 0 {
				first <- err // one value: the first poll's error or refusal, or nil
			}
			if err != nil {
				s.Fail(err)
				return
			}
			if len(a.Messages) == 0 {
				s.Push(wire.Frame{Type: "ping"})
			}
			for _, f := range a.Messages {
				s.Push(f)
				if f.Type == "hello" && f.Session != "" {
					q.Set("client", f.Session)
				}
				if f.Type == "disconnect" {
					s.Fail(ClosedError{f.Code})
					return
				}
			}
			q.Set("cursor", *a.Cursor)
		}
	}()
	if err := <-first; err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

func pollOnce(ctx context.Context, client *http.Client, u string, q url.Values, callback string) (wire.PollAnswer, error) {
	r, err := Do(ctx, client, http.MethodGet, u, q, nil)
	if err != nil {
		return wire.PollAnswer{}, err
	}
	a, err := wire.DecodePoll([]byte(r.Body), callback)
	switch {
	case r.Status != http.StatusOK:
		return a, HTTPError{r.Status}
	case err != nil:
		return a, err
	case a.Error != nil:
		return a, HTTPError{a.Error.Code} // JSONP carries errors in the body
	}
	return a, nil
}

// NextOf returns the next frame of type typ, skipping frames of other
// types. When none comes within d the error wraps ErrTimeout; when the
// stream ends first it wraps the stream's error.
func (s *Stream) NextOf(typ string, d time.Duration) (wire.Frame, error) {
	deadline := time.Now().Add(d)
	for {
		f, err := s.Next(time.Until(deadline))
		switch {
		case errors.Is(err, ErrTimeout):
			return f, fmt.Errorf("no %q frame within %v: %w", typ, d, err)
		case err != nil:
			return f, fmt.Errorf("connection ended waiting for %q: %w", typ, err)
		case f.Type == typ:
			return f, nil
		}
	}
}

// maxRefusalBody bounds how much of a refusal's body OpenStream reads for
// its error.
const maxRefusalBody = 512

// OpenStream sends a request for a streamed answer (an event stream, a
// SockJS xhr_streaming) through client and returns the answer, whose body
// the caller reads and closes; ctx ends the request. An answer other than
// 200 is an error that wraps HTTPError and quotes the start of its body.
func OpenStream(ctx context.Context, client *http.Client, method, u string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxRefusalBody))
		return nil, fmt.Errorf("connect: %w: %s", HTTPError{resp.StatusCode}, bytes.TrimSpace(body))
	}
	return resp, nil
}
