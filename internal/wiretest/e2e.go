package wiretest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
)

// WSURL is the WebSocket URL of path on the server at base (http://host or
// https://host): ws://host/path or wss://host/path.
func WSURL(base, path string) string {
	return "ws" + strings.TrimPrefix(base, "http") + path
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

// OpenSockJSXHR opens the xhr_streaming receiver of the SockJS session at
// sess (a URL as SockJSSession makes it) and reads the WaterSpout frames of
// its SockJS messages into a Stream; a SockJS close frame ends it with a
// ClosedError. An answer other than 200 is OpenStream's error. Commands go
// to sess+"/xhr_send".
func OpenSockJSXHR(client *http.Client, sess string) (*Stream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := OpenStream(ctx, client, http.MethodPost, sess+"/xhr_streaming", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	s := NewStream(func() { cancel(); resp.Body.Close() })
	go func() {
		// One SockJS frame a line: the "h…" prelude, "o", then "a[...]"
		// messages, "h" heartbeats and at last "c[code,reason]".
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				s.Fail(err)
				return
			}
			sf, err := wire.DecodeSockJS(line)
			if err != nil {
				s.Fail(err)
				return
			}
			for _, fs := range sf.Messages {
				for _, f := range fs {
					s.Push(f)
				}
			}
			if sf.Kind == 'c' {
				s.Fail(ClosedError{sf.Code})
				return
			}
		}
	}()
	return s, nil
}
