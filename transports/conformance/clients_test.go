package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/session"
)

// client is one connection over one transport, as a stream of frames.
type client interface {
	next(timeout time.Duration) (frame, error)
	close()
}

// stream turns a reader goroutine's output into a client.
type stream struct {
	frames chan frame
	errc   chan error
	closer func()
	once   sync.Once
}

func newStream(closer func()) *stream {
	return &stream{frames: make(chan frame, 100000), errc: make(chan error, 1), closer: closer}
}

func (s *stream) push(f frame) { s.frames <- f }
func (s *stream) fail(err error) {
	select {
	case s.errc <- err:
	default:
	}
}
func (s *stream) close() { s.once.Do(s.closer) }
func (s *stream) next(d time.Duration) (frame, error) {
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
		return frame{}, err
	case <-t.C:
		return frame{}, errTimeout
	}
}

var errTimeout = errors.New("no frame in time")

// closedError is how a stream reports the end of a connection with a code.
type closedError struct{ code int }

func (e closedError) Error() string { return fmt.Sprintf("closed with %d", e.code) }

// pushLines decodes newline-separated JSON frames.
func pushLines(s *stream, data []byte) error {
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var f frame
		if err := json.Unmarshal(line, &f); err != nil {
			return fmt.Errorf("bad frame %q: %w", line, err)
		}
		s.push(f)
	}
	return nil
}

func subscribeCommands(channels []string, since session.Cursor) [][]byte {
	var out [][]byte
	for i, ch := range channels {
		cmd := map[string]any{"type": "subscribe", "id": i + 1, "channel": ch}
		if p, ok := since[ch]; ok {
			cmd["since"] = p
		}
		b, _ := json.Marshal(cmd)
		out = append(out, b)
	}
	return out
}

func wsURL(e *env, path string) string {
	u := "ws" + strings.TrimPrefix(e.srv.URL, "http") + path
	if e.token != "" {
		u += "?token=" + url.QueryEscape(e.token)
	}
	return u
}

// withToken adds the env's token, if any, to a stream request's query.
func withToken(e *env, q url.Values) url.Values {
	if e.token != "" {
		q.Set("token", e.token)
	}
	return q
}

// smallBufferDialer makes a client whose kernel receive buffer is tiny, so a
// client that stops reading stalls the server's writes quickly.
var smallBufferDialer = &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	if err != nil {
		return err
	}
	return serr
}}

// --- WebSocket ---

func dialWS(e *env, channels []string, since session.Cursor) (client, error) {
	c, _, err := websocket.DefaultDialer.Dial(wsURL(e, "/connect/ws"), nil)
	if err != nil {
		return nil, err
	}
	s := newStream(func() { c.Close() })
	go func() {
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					s.fail(closedError{ce.Code})
				} else {
					s.fail(err)
				}
				return
			}
			if err := pushLines(s, data); err != nil {
				s.fail(err)
				return
			}
		}
	}()
	for _, cmd := range subscribeCommands(channels, since) {
		if err := c.WriteMessage(websocket.TextMessage, cmd); err != nil {
			// A server that refused the connection may have closed it
			// already: the reader reports its close code.
			break
		}
	}
	return &wsClient{stream: s, conn: c}, nil
}

type wsClient struct {
	*stream
	conn *websocket.Conn
}

func (c *wsClient) send(b []byte) error { return c.conn.WriteMessage(websocket.TextMessage, b) }

func stallWS(e *env, ch string) (func(), error) {
	d := websocket.Dialer{NetDialContext: smallBufferDialer.DialContext}
	c, _, err := d.Dial(wsURL(e, "/connect/ws"), nil)
	if err != nil {
		return nil, err
	}
	return func() { c.Close() }, c.WriteMessage(websocket.TextMessage, subscribeCommands([]string{ch}, nil)[0])
}

// --- SockJS (its websocket transport, raw protocol) ---

func sockjsPath() string {
	var id [8]byte
	rand.Read(id[:])
	return "/connect/sockjs/000/" + hex.EncodeToString(id[:]) + "/websocket"
}

func dialSockJS(e *env, channels []string, since session.Cursor) (client, error) {
	c, _, err := websocket.DefaultDialer.Dial(wsURL(e, sockjsPath()), nil)
	if err != nil {
		return nil, err
	}
	s := newStream(func() { c.Close() })
	go func() {
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				s.fail(err)
				return
			}
			if err := pushSockJS(s, data); err != nil {
				s.fail(err)
				return
			}
		}
	}()
	sc := &sockjsClient{stream: s, conn: c}
	for _, cmd := range subscribeCommands(channels, since) {
		if err := sc.send(cmd); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// pushSockJS decodes one SockJS frame: o (open), h (heartbeat), a[...] (messages), c[code,reason] (close).
func pushSockJS(s *stream, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case 'o', 'h':
		return nil
	case 'a':
		var msgs []string
		if err := json.Unmarshal(data[1:], &msgs); err != nil {
			return fmt.Errorf("bad sockjs frame %q: %w", data, err)
		}
		for _, m := range msgs {
			if err := pushLines(s, []byte(m)); err != nil {
				return err
			}
		}
		return nil
	case 'c':
		var c []any
		if err := json.Unmarshal(data[1:], &c); err != nil || len(c) < 1 {
			return fmt.Errorf("bad sockjs close %q", data)
		}
		code, _ := c[0].(float64)
		return closedError{int(code)}
	}
	return fmt.Errorf("unknown sockjs frame %q", data)
}

type sockjsClient struct {
	*stream
	conn *websocket.Conn
}

func (c *sockjsClient) send(b []byte) error {
	msg, _ := json.Marshal([]string{string(b)})
	return c.conn.WriteMessage(websocket.TextMessage, msg)
}

func stallSockJS(e *env, ch string) (func(), error) {
	d := websocket.Dialer{NetDialContext: smallBufferDialer.DialContext}
	c, _, err := d.Dial(wsURL(e, sockjsPath()), nil)
	if err != nil {
		return nil, err
	}
	msg, _ := json.Marshal([]string{string(subscribeCommands([]string{ch}, nil)[0])})
	return func() { c.Close() }, c.WriteMessage(websocket.TextMessage, msg)
}

// --- SSE ---

func streamQuery(channels []string, since session.Cursor) url.Values {
	q := url.Values{}
	for _, ch := range channels {
		q.Add("channel", ch)
	}
	if len(since) > 0 {
		q.Set("cursor", since.Encode())
	}
	return q
}

func dialSSE(e *env, channels []string, since session.Cursor) (client, error) {
	return dialSSEQuery(e, streamQuery(channels, since))
}

func dialSSEQuery(e *env, q url.Values) (client, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/connect/sse?"+withToken(e, q).Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != 200 {
		cancel()
		resp.Body.Close()
		return nil, httpError{resp.StatusCode}
	}
	s := newStream(func() { cancel(); resp.Body.Close() })
	go func() {
		r := bufio.NewReader(resp.Body)
		var data []byte
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				s.fail(err)
				return
			}
			line = bytes.TrimRight(line, "\r\n")
			switch {
			case len(line) == 0:
				if len(data) > 0 {
					if err := pushLines(s, data); err != nil {
						s.fail(err)
						return
					}
				}
				data = nil
			case bytes.HasPrefix(line, []byte("data:")):
				data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
			}
		}
	}()
	return s, nil
}

type httpError struct{ status int }

func (e httpError) Error() string { return fmt.Sprintf("HTTP %d", e.status) }

// stallHTTP sends a GET and never reads the answer.
func stallHTTP(e *env, pathAndQuery string) (func(), error) {
	c, err := smallBufferDialer.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", pathAndQuery, e.srv.Listener.Addr())
	return func() { c.Close() }, err
}

func stallSSE(e *env, ch string) (func(), error) {
	return stallHTTP(e, "/connect/sse?channel="+url.QueryEscape(ch))
}

// --- long-poll and JSONP ---

// dialPoll runs a polling loop. Every answer's frames go into the stream; an
// empty answer (the held poll timed out) is reported as a ping frame, since
// that answer is what keeps an idle long-poll client and its proxies alive.
func dialPoll(jsonp bool) func(e *env, channels []string, since session.Cursor) (client, error) {
	return func(e *env, channels []string, since session.Cursor) (client, error) {
		return dialPollQuery(e, streamQuery(channels, since), jsonp)
	}
}

func dialPollQuery(e *env, q url.Values, jsonp bool) (client, error) {
	{
		ctx, cancel := context.WithCancel(context.Background())
		s := newStream(cancel)
		if jsonp {
			q.Set("callback", "cb")
		}
		q = withToken(e, q)
		first := make(chan error, 1)
		go func() {
			for n := 0; ; n++ {
				status, body, err := getPoll(ctx, e.srv.URL+"/connect/poll?"+q.Encode(), jsonp)
				if n == 0 {
					// One value: the first poll's error or refusal, or nil.
					switch {
					case err != nil:
						first <- err
					case status != 200:
						first <- httpError{status}
					default:
						first <- nil
					}
				}
				if err != nil {
					s.fail(err)
					return
				}
				if status != 200 {
					s.fail(httpError{status})
					return
				}
				if len(body.Messages) == 0 {
					s.push(frame{Type: "ping"})
				}
				for _, m := range body.Messages {
					var f frame
					if err := json.Unmarshal(m, &f); err != nil {
						s.fail(err)
						return
					}
					s.push(f)
					if f.Type == "disconnect" {
						s.fail(closedError{f.Code})
						return
					}
				}
				q.Set("cursor", body.Cursor)
			}
		}()
		if err := <-first; err != nil {
			cancel()
			return nil, err
		}
		return s, nil
	}
}

type pollBody struct {
	Messages []json.RawMessage `json:"messages"`
	Cursor   string            `json:"cursor"`
	Error    *session.Error    `json:"error"`
}

func getPoll(ctx context.Context, u string, jsonp bool) (int, pollBody, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, pollBody{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, pollBody{}, err
	}
	var body pollBody
	if jsonp {
		raw = bytes.TrimPrefix(bytes.TrimSpace(raw), []byte("/**/"))
		if !bytes.HasPrefix(raw, []byte("cb(")) || !bytes.HasSuffix(raw, []byte(");")) {
			return resp.StatusCode, body, fmt.Errorf("not a JSONP answer: %.80q", raw)
		}
		raw = raw[3 : len(raw)-2]
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return resp.StatusCode, body, fmt.Errorf("poll answer %.80q: %w", raw, err)
	}
	status := resp.StatusCode
	if body.Error != nil && status == 200 {
		status = body.Error.Code // JSONP carries errors in the body
	}
	return status, body, nil
}

func stallPoll(e *env, ch string) (func(), error) {
	return stallHTTP(e, "/connect/poll?channel="+url.QueryEscape(ch))
}
