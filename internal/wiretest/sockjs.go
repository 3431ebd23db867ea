package wiretest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/wire"
)

// The SockJS transports a SockJSClient speaks.
const (
	SockJSWebsocket    = "websocket"
	SockJSXHRStreaming = "xhr_streaming"
	SockJSXHRPolling   = "xhr"
)

// SockJSEvent is one thing a SockJS client saw: a frame (one JSON object
// of an a[...] message), the close frame, or the end of its transport.
type SockJSEvent struct {
	Frame  wire.Frame
	Msg    int // index of the SockJS message that carried the frame
	Closed bool
	Code   int
	Reason string
	Err    error
}

// SockJSClient is a raw SockJS client of one transport: it decodes the
// SockJS framing itself (o, h, a[...], c[code,reason]) into events, read by
// a goroutine of its own.
type SockJSClient struct {
	T      testing.TB
	URL    string   // the session's URL, without the transport part
	Raw    net.Conn // the websocket transport's connection
	events chan SockJSEvent
	msgs   int // SockJS messages seen, only touched by the reading goroutine
	send   func(payload []byte) error
	stop   func()
	done   chan struct{}
}

// DialSockJS opens a new SockJS session under base, the endpoint's prefix
// (http://host/connect/sockjs), over transport. query, if not empty, is
// added to every URL (sockjs-client keeps the query string of its base
// URL). A failed dial fails the test; the test's end closes the client.
func DialSockJS(tb testing.TB, base, transport, query string) *SockJSClient {
	tb.Helper()
	c := &SockJSClient{T: tb, URL: SockJSSession(base), events: make(chan SockJSEvent, 4096), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	q := ""
	if query != "" {
		q = "?" + query
	}
	switch transport {
	case SockJSWebsocket:
		u := "ws" + strings.TrimPrefix(c.URL, "http") + "/websocket" + q
		conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
		if err != nil {
			cancel()
			tb.Fatalf("dial %s: %v (%v)", u, err, resp)
		}
		c.stop = func() { cancel(); conn.Close() }
		c.Raw = conn.UnderlyingConn()
		var wmu sync.Mutex
		c.send = func(p []byte) error {
			wmu.Lock()
			defer wmu.Unlock()
			return conn.WriteMessage(websocket.TextMessage, p)
		}
		go func() {
			defer close(c.done)
			for {
				_, data, err := conn.ReadMessage()
				if err != nil {
					c.push(SockJSEvent{Err: err})
					return
				}
				if c.parse(data) {
					return
				}
			}
		}()
	case SockJSXHRStreaming, SockJSXHRPolling:
		c.send = func(p []byte) error { return c.xhrSend(p, q) }
		go func() {
			defer close(c.done)
			for ctx.Err() == nil {
				if c.poll(ctx, transport, q) {
					return
				}
			}
		}()
	default:
		cancel()
		tb.Fatalf("unknown SockJS transport %q", transport)
	}
	tb.Cleanup(c.Close)
	return c
}

// Close ends the transport and waits for its reader.
func (c *SockJSClient) Close() {
	c.stop()
	<-c.done
}

// Send sends p, a JSON array of SockJS messages, over the transport.
func (c *SockJSClient) Send(p []byte) error { return c.send(p) }

// Next returns the next event, failing the test after WaitLimit.
func (c *SockJSClient) Next() SockJSEvent {
	c.T.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-time.After(WaitLimit):
		c.T.Fatal("timed out waiting for a SockJS frame")
		return SockJSEvent{}
	}
}

func (c *SockJSClient) push(ev SockJSEvent) {
	select {
	case c.events <- ev:
	default:
		c.T.Errorf("client event buffer full; dropped %+v", ev)
	}
}

// parse decodes one SockJS frame and reports whether it was the close frame.
func (c *SockJSClient) parse(data []byte) bool {
	if len(bytes.TrimRight(data, "\n")) == 0 {
		return false
	}
	sf, err := wire.DecodeSockJS(data)
	switch {
	case err != nil:
		c.push(SockJSEvent{Err: err})
		return true
	case sf.Kind == 'c':
		c.push(SockJSEvent{Closed: true, Code: sf.Code, Reason: sf.Reason})
		return true
	}
	for _, fs := range sf.Messages {
		c.msgs++
		for _, f := range fs {
			c.push(SockJSEvent{Frame: f, Msg: c.msgs})
		}
	}
	return false
}

// SockJSAnotherConnection is sockjs-go's answer to a receiving request
// while another one is attached to the session.
const SockJSAnotherConnection = "c[2010,\"Another connection still open\"]\n"

// poll runs one xhr_streaming or xhr request and reports whether the session
// ended.
func (c *SockJSClient) poll(ctx context.Context, transport, q string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/"+transport+q, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.push(SockJSEvent{Err: err})
		return true
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.push(SockJSEvent{Err: fmt.Errorf("%s: status %d", transport, resp.StatusCode)})
		return true
	}
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadBytes('\n')
		if string(line) == SockJSAnotherConnection {
			// sockjs-go detaches an answered poll in a goroutine of its
			// own, so a client that asks again at once may find the old
			// receiver still attached. The session is unharmed: ask again.
			return false
		}
		if len(line) > 0 && c.parse(line) {
			return true
		}
		if errors.Is(err, io.EOF) {
			return false // a polling answer, or a stream at its response limit: ask again
		}
		if err != nil {
			c.push(SockJSEvent{Err: err})
			return true
		}
	}
}

func (c *SockJSClient) xhrSend(p []byte, q string) error {
	resp, err := http.Post(c.URL+"/xhr_send"+q, "text/plain", bytes.NewReader(p))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("xhr_send: status %d: %s", resp.StatusCode, body)
	}
	return nil
}

// SockJSSession is the URL of a new SockJS session under base, the
// endpoint's prefix (http://host/connect/sockjs): server "000" and a random
// session id, to which a client appends its transport ("/websocket",
// "/xhr_streaming", ...). The ids are random so that sessions of parallel
// tests never meet.
func SockJSSession(base string) string {
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	return base + "/000/" + hex.EncodeToString(id[:])
}

// SockJSFrames decodes one SockJS frame received over SockJS's WebSocket
// transport into the WaterSpout frames its messages carry, for StreamWS:
// open and heartbeat frames carry none, and the close frame c[code,reason]
// ends the stream with a ClosedError of its code.
func SockJSFrames(data []byte) ([]wire.Frame, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	sf, err := wire.DecodeSockJS(data)
	if err != nil {
		return nil, err
	}
	if sf.Kind == 'c' {
		return nil, ClosedError{Code: sf.Code}
	}
	var out []wire.Frame
	for _, m := range sf.Messages {
		out = append(out, m...)
	}
	return out, nil
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
	// One SockJS frame a line: the "h…" prelude, "o", then "a[...]"
	// messages, "h" heartbeats and at last "c[code,reason]".
	r := bufio.NewReader(resp.Body)
	go s.read(func() ([]byte, error) { return r.ReadBytes('\n') }, SockJSFrames)
	return s, nil
}
