package conformance

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

// client is one connection over one transport, as a stream of frames.
type client interface {
	Next(timeout time.Duration) (frame, error)
	Close()
}

type (
	closedError = wiretest.ClosedError
	httpError   = wiretest.HTTPError
)

func subscribeCommands(channels []string, since session.Cursor) [][]byte {
	at := make(map[string]wire.Position, len(since))
	for ch, p := range since {
		at[ch] = wire.Position(p)
	}
	return wire.SubscribeAll(channels, at)
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
var smallBufferDialer = wiretest.SmallReceiveBuffer(4096)

// --- WebSocket ---

func dialWS(e *env, channels []string, since session.Cursor) (client, error) {
	c, _, err := websocket.DefaultDialer.Dial(wsURL(e, "/connect/ws"), nil)
	if err != nil {
		return nil, err
	}
	s := wiretest.StreamWS(c, wire.DecodeFrames)
	for _, cmd := range subscribeCommands(channels, since) {
		if err := c.WriteMessage(websocket.TextMessage, cmd); err != nil {
			// A server that refused the connection may have closed it
			// already: the reader reports its close code.
			break
		}
	}
	return &wsClient{Stream: s, conn: c}, nil
}

type wsClient struct {
	*wiretest.Stream
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

// sockjsPath is the path of a new SockJS session's websocket transport.
func sockjsPath() string {
	return wiretest.SockJSSession("/connect/sockjs") + "/websocket"
}

func dialSockJS(e *env, channels []string, since session.Cursor) (client, error) {
	c, _, err := websocket.DefaultDialer.Dial(wsURL(e, sockjsPath()), nil)
	if err != nil {
		return nil, err
	}
	sc := &sockjsClient{Stream: wiretest.StreamWS(c, wiretest.SockJSFrames), conn: c}
	for _, cmd := range subscribeCommands(channels, since) {
		if err := sc.send(cmd); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

type sockjsClient struct {
	*wiretest.Stream
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
	return wiretest.OpenSSE(http.DefaultClient, e.srv.URL+"/connect/sse?"+withToken(e, q).Encode(), nil)
}

// stallHTTP sends a GET and never reads the answer.
func stallHTTP(e *env, pathAndQuery string) (func(), error) {
	c, err := wiretest.DialStalled(e.srv.Listener.Addr().String(), http.MethodGet, pathAndQuery)
	if err != nil {
		return nil, err
	}
	return func() { c.Close() }, nil
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
	callback := ""
	if jsonp {
		callback = "cb"
	}
	return wiretest.PollLoop(http.DefaultClient, e.srv.URL+"/connect/poll", withToken(e, q), callback)
}

func stallPoll(e *env, ch string) (func(), error) {
	return stallHTTP(e, "/connect/poll?channel="+url.QueryEscape(ch))
}
