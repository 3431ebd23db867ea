package wiretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
)

// SSEEvent is one event of an event stream as a browser's EventSource
// parses it, with its data decoded as a frame when it has any.
type SSEEvent struct {
	wire.SSEEvent
	Frame wire.Frame
}

// SSEStream is an open event stream read by a goroutine, event by event.
// Unlike OpenSSE's Stream, which holds frames only, it keeps each event's
// id and retry fields, which a client resuming with Last-Event-ID relies
// on, and the response with its headers.
type SSEStream struct {
	Resp   *http.Response
	cancel context.CancelFunc
	events chan SSEEvent
	errc   chan error
}

// DialSSE opens an event stream at u through client. An answer other than
// 200 is returned whole, with no stream. The test's end closes the stream.
func DialSSE(tb testing.TB, client *http.Client, u string, header http.Header) (*SSEStream, Reply) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		tb.Fatalf("GET %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nil, Reply{resp.StatusCode, resp.Header, string(b)}
	}
	s := &SSEStream{Resp: resp, cancel: cancel, events: make(chan SSEEvent, 10000), errc: make(chan error, 1)}
	go s.read()
	tb.Cleanup(s.Close)
	return s, Reply{Status: resp.StatusCode, Header: resp.Header}
}

// Close ends the stream, as a client leaving.
func (s *SSEStream) Close() {
	s.cancel()
	s.Resp.Body.Close()
}

func (s *SSEStream) read() {
	defer close(s.events)
	r := wire.NewSSEReader(s.Resp.Body)
	for {
		e, err := r.Next()
		if err != nil {
			s.errc <- err
			return
		}
		ev := SSEEvent{SSEEvent: e}
		if e.Data != "" {
			if err := json.Unmarshal([]byte(e.Data), &ev.Frame); err != nil {
				s.errc <- fmt.Errorf("event data %q: %w", e.Data, err)
				return
			}
		}
		s.events <- ev
	}
}

// Next returns the next event, failing the test when the stream ends or
// nothing comes within WaitLimit.
func (s *SSEStream) Next(tb testing.TB) SSEEvent {
	tb.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			tb.Fatalf("stream ended: %v", <-s.errc)
		}
		return ev
	case <-time.After(WaitLimit):
		tb.Fatal("no event in time")
	}
	panic("unreachable")
}

// End waits for the server to end the stream and returns the events left
// before its end, failing the test unless the end is clean.
func (s *SSEStream) End(tb testing.TB) []SSEEvent {
	tb.Helper()
	var out []SSEEvent
	timeout := time.After(WaitLimit)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				if err := <-s.errc; !errors.Is(err, io.EOF) {
					tb.Fatalf("stream ended with %v, want a clean end", err)
				}
				return out
			}
			out = append(out, ev)
		case <-timeout:
			tb.Fatal("stream did not end")
		}
	}
}
