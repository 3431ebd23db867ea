package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	r3sse "github.com/r3labs/sse/v2"
	"gopkg.in/cenkalti/backoff.v1"

	"github.com/waterspout/waterspout/apiclient"
	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/session"
)

// Limits and timings of `waterspout listen`.
const (
	listenMaxFrame     = 16 << 20         // one frame (WebSocket message, SSE event, poll answer)
	listenHelloTimeout = 10 * time.Second // a connection that says nothing this long has failed
	listenMinBackoff   = 250 * time.Millisecond
	listenMaxBackoff   = 10 * time.Second
	listenPollTimeout  = 75 * time.Second // the server holds a poll at most 55 s
)

const listenUsage = `Usage: waterspout listen CHANNEL... [flags]

Subscribes to the channels and prints every message as one JSON line:
{"channel":…,"offset":…,"epoch":…,"data":…}. When the connection is cut it
reconnects and resumes each channel from the last message printed, and says
so on standard error; when the server's history no longer covers the gap it
says that too (recovered: false) instead of skipping silently. It runs until
interrupted, or until the server refuses it for good.

Flags:
  --server URL        the server (env WATERSPOUT_SERVER, default ` + defaultServer + `)
  --token JWT         connection token (env WATERSPOUT_TOKEN)
  --since POS         resume from a position: CHANNEL=EPOCH:OFFSET (repeatable), or
                      EPOCH:OFFSET with one channel; prints the messages after it
  --transport NAME    ws (default), sse or poll: to see what a proxy on the way does
  -h, --help          show this help
`

// positionsFlag collects --since values.
type positionsFlag []string

func (p *positionsFlag) String() string     { return strings.Join(*p, ",") }
func (p *positionsFlag) Set(v string) error { *p = append(*p, v); return nil }

func runListen(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("listen")
	serverURL := e.serverFlag(fs)
	token := fs.String("token", e.getenv("WATERSPOUT_TOKEN"), "")
	transport := fs.String("transport", "ws", "")
	var since positionsFlag
	fs.Var(&since, "since", "")
	channels, err := e.parseArgs(fs, args, listenUsage)
	if err != nil {
		return err
	}
	if len(channels) == 0 {
		return usagef("want at least one CHANNEL")
	}
	seen := map[string]bool{}
	for _, ch := range channels {
		if err := session.ValidateChannel(ch); err != nil {
			return usagef("channel %q: %v", ch, err)
		}
		if seen[ch] {
			return usagef("channel %q given twice", ch)
		}
		seen[ch] = true
	}
	base, err := apiURL(*serverURL, "")
	if err != nil {
		return usageError{err}
	}
	switch *transport {
	case "ws", "sse", "poll":
	default:
		return usagef("--transport %q: want ws, sse or poll", *transport)
	}
	l := &listener{
		base: base, token: *token, channels: channels, transport: *transport,
		pos: map[string]wire.Position{}, resuming: map[string]wire.Position{},
		out: json.NewEncoder(e.stdout), log: e.stderr,
	}
	l.out.SetEscapeHTML(false)
	for _, s := range since {
		ch, p, err := parseSince(s, channels)
		if err != nil {
			return usageError{err}
		}
		l.pos[ch] = p
	}
	return l.run(ctx)
}

// parseSince reads CHANNEL=EPOCH:OFFSET, or EPOCH:OFFSET when there is one
// channel.
func parseSince(s string, channels []string) (string, wire.Position, error) {
	ch, pos, ok := strings.Cut(s, "=")
	if !ok {
		if len(channels) != 1 {
			return "", wire.Position{}, fmt.Errorf("--since %q: name the channel (CHANNEL=EPOCH:OFFSET)", s)
		}
		ch, pos = channels[0], s
	}
	if !contains(channels, ch) {
		return "", wire.Position{}, fmt.Errorf("--since %q: %q is not a channel listened to", s, ch)
	}
	i := strings.LastIndexByte(pos, ':')
	if i < 0 {
		return "", wire.Position{}, fmt.Errorf("--since %q: want EPOCH:OFFSET", s)
	}
	off, err := strconv.ParseUint(pos[i+1:], 10, 64)
	if err != nil || !session.ValidEpoch(pos[:i]) {
		return "", wire.Position{}, fmt.Errorf("--since %q: want EPOCH:OFFSET (an epoch as printed, a whole offset)", s)
	}
	return ch, wire.Position{Epoch: pos[:i], Offset: off}, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// listener is one `waterspout listen`: the positions it has printed up to,
// and the transport it reconnects over. It runs on one goroutine.
type listener struct {
	base, token, transport string
	channels               []string
	pos                    map[string]wire.Position // last printed (or resumed-from) position per channel
	// printed is the highest offset printed per channel and epoch, so that
	// an epoch that comes back after another (from a misbehaving server or
	// proxy) never has an offset printed twice or out of order.
	printed   map[string]map[string]uint64
	resuming  map[string]wire.Position // channels resumed on this connection, from where, not yet confirmed
	out       *json.Encoder
	log       io.Writer
	connected bool // this connection delivered its first answer
	// idle is how long this connection may stay silent: listenHelloTimeout
	// until the hello says how often the server pings.
	idle       time.Duration
	reconnects int
}

// frame is any server frame.
type frame = wire.Frame

// fatalError ends listen: the server refused for good.
type fatalError struct{ err error }

func (f fatalError) Error() string { return f.err.Error() }
func (f fatalError) Unwrap() error { return f.err }

// run connects, and reconnects with full-jitter backoff until ctx ends or
// the server refuses for good.
func (l *listener) run(ctx context.Context) error {
	failures := 0
	for {
		l.connected, l.idle = false, listenHelloTimeout
		l.resuming = map[string]wire.Position{}
		for ch, p := range l.pos {
			l.resuming[ch] = p
		}
		var err error
		switch l.transport {
		case "ws":
			err = l.ws(ctx)
		case "sse":
			err = l.sse(ctx)
		default:
			err = l.poll(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		var fatal fatalError
		if errors.As(err, &fatal) {
			return fatal.err
		}
		if l.connected {
			failures = 0
		}
		ceiling := min(listenMaxBackoff, listenMinBackoff<<min(failures, 10))
		delay := listenMinBackoff/2 + time.Duration(rand.Int64N(int64(ceiling)))
		failures++
		fmt.Fprintf(l.log, "listen: connection lost (%v); reconnecting in %s\n", err, delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		l.reconnects++
	}
}

// describePositions is "news from Xy12:7, orders from Ab3:2".
func (l *listener) describePositions() string {
	var parts []string
	for _, ch := range l.channels {
		if p, ok := l.pos[ch]; ok {
			parts = append(parts, fmt.Sprintf("%s from %s:%d", ch, p.Epoch, p.Offset))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; resuming " + strings.Join(parts, ", ")
}

// onConnected is called on a connection's first answer.
func (l *listener) onConnected(session string) {
	if l.connected {
		return
	}
	l.connected = true
	verb := "connected"
	if l.reconnects > 0 {
		verb = "reconnected"
	}
	who := ""
	if session != "" {
		who = " (session " + session + ")"
	}
	fmt.Fprintf(l.log, "listen: %s over %s%s to %s%s\n", verb, l.transport, who, strings.Join(l.channels, " "), l.describePositions())
}

// handle acts on one frame; an error ends the connection.
func (l *listener) handle(f frame) error {
	switch f.Type {
	case "hello":
		l.onConnected(f.Session)
		if f.Ping > 0 {
			// The server sends something at least every ping seconds.
			l.idle = 2*time.Duration(f.Ping)*time.Second + 5*time.Second
		}
	case "subscribed":
		l.onConnected("")
		l.subscribed(f)
	case "message":
		return l.message(f)
	case "disconnect":
		err := fmt.Errorf("server disconnected: %d %s", f.Code, f.Reason)
		if !f.Reconnect {
			return fatalError{err}
		}
		return err
	case "error":
		err := fmt.Errorf("server refused: %d %s", f.Code, f.Reason)
		if refusedForGood(f.Code) {
			return fatalError{err}
		}
		return err // a 503 (broker unavailable), a 429: reconnect and try again
	}
	return nil
}

func (l *listener) subscribed(f frame) {
	at := f.Position()
	switch {
	case f.Recovered == nil:
		// A fresh subscription: live from the current position.
		if _, ok := l.pos[f.Channel]; !ok {
			l.pos[f.Channel] = at
		}
	case *f.Recovered:
		if p, ok := l.resuming[f.Channel]; ok {
			fmt.Fprintf(l.log, "listen: %s: resumed from %s:%d, nothing lost\n", f.Channel, p.Epoch, p.Offset)
		}
	default:
		p := l.pos[f.Channel]
		fmt.Fprintf(l.log, "listen: %s: NOT RECOVERED (recovered: false): the server's history no longer covers %s:%d; "+
			"messages in between are lost; continuing from %s:%d\n", f.Channel, p.Epoch, p.Offset, at.Epoch, at.Offset)
		l.pos[f.Channel] = at
	}
	delete(l.resuming, f.Channel)
}

// quietResumes reports the channels a poll resumed without a word: a
// resume with a cursor sends subscribed only for the channels that did
// not recover.
func (l *listener) quietResumes() {
	for _, ch := range l.channels {
		if p, ok := l.resuming[ch]; ok {
			fmt.Fprintf(l.log, "listen: %s: resumed from %s:%d, nothing lost\n", ch, p.Epoch, p.Offset)
			delete(l.resuming, ch)
		}
	}
}

func (l *listener) message(f frame) error {
	if last, ok := l.printed[f.Channel][f.Epoch]; ok && f.Offset <= last {
		return nil // printed already, in this epoch's earlier stretch
	}
	p, known := l.pos[f.Channel]
	if known && p.Epoch == f.Epoch {
		if f.Offset <= p.Offset {
			return nil // seen: a resume replays from the position, transports may repeat
		}
		if f.Offset > p.Offset+1 {
			fmt.Fprintf(l.log, "listen: %s: GAP: offsets %d..%d of %s are missing\n", f.Channel, p.Offset+1, f.Offset-1, f.Epoch)
		}
	}
	if known && p.Epoch != f.Epoch {
		fmt.Fprintf(l.log, "listen: %s: the epoch changed from %s to %s: the channel's history restarted\n", f.Channel, p.Epoch, f.Epoch)
	}
	l.pos[f.Channel] = f.Position()
	if l.printed == nil {
		l.printed = map[string]map[string]uint64{}
	}
	if l.printed[f.Channel] == nil {
		l.printed[f.Channel] = map[string]uint64{}
	}
	l.printed[f.Channel][f.Epoch] = f.Offset
	if err := l.out.Encode(struct {
		Channel string          `json:"channel"`
		Offset  uint64          `json:"offset"`
		Epoch   string          `json:"epoch"`
		Data    json.RawMessage `json:"data"`
	}{f.Channel, f.Offset, f.Epoch, f.Data}); err != nil {
		return fatalError{fmt.Errorf("write: %w", err)}
	}
	return nil
}

// handleFrames decodes the frames of a WebSocket message or an SSE event
// and handles them in order. A frame that does not decode ends the
// connection, after the frames before it.
func (l *listener) handleFrames(data []byte) error {
	fs, err := wire.DecodeFrames(data)
	for _, f := range fs {
		if err := l.handle(f); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("bad %w", err)
	}
	return nil
}

// cursor encodes the positions of every channel known, for SSE and poll.
func (l *listener) cursor() string {
	if len(l.pos) == 0 {
		return ""
	}
	c := session.Cursor{}
	for ch, p := range l.pos {
		c[ch] = session.Position(p)
	}
	return c.Encode()
}

// streamQuery is the query of /connect/sse and /connect/poll.
func (l *listener) streamQuery() url.Values {
	q := url.Values{"channel": l.channels}
	if c := l.cursor(); c != "" {
		q.Set("cursor", c)
	}
	if l.token != "" {
		q.Set("token", l.token)
	}
	return q
}

// refusedForGood reports whether the server would refuse again with code,
// an HTTP status or an error frame's code: a 4xx other than 408 (timeout)
// and 429 (rate limited). A 5xx, such as 503 while the broker is down, is
// worth a retry.
func refusedForGood(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// statusError turns a refused HTTP request into an error: fatal when the
// server would refuse again (see refusedForGood).
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	err := fmt.Errorf("server answered %d: %s", resp.StatusCode, apiclient.ErrorOf(resp, b).Reason)
	if refusedForGood(resp.StatusCode) {
		return fatalError{err}
	}
	return err
}

// ws listens over one WebSocket connection until it ends.
func (l *listener) ws(ctx context.Context) error {
	u := "ws" + strings.TrimPrefix(l.base, "http") + "/connect/ws"
	if l.token != "" {
		u += "?" + url.Values{"token": {l.token}}.Encode()
	}
	d := websocket.Dialer{HandshakeTimeout: listenHelloTimeout, Proxy: http.ProxyFromEnvironment}
	conn, resp, err := d.DialContext(ctx, u, nil)
	if err != nil {
		if resp != nil {
			defer resp.Body.Close()
			return statusError(resp)
		}
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
			time.Now().Add(time.Second))
		conn.Close()
	})
	defer stop()
	conn.SetReadLimit(listenMaxFrame)

	// Subscribe at once, in one message; the server reads commands after
	// its hello.
	cmds := wire.SubscribeAll(l.channels, l.pos)
	_ = conn.SetWriteDeadline(time.Now().Add(listenHelloTimeout))
	if err := conn.WriteMessage(websocket.TextMessage, bytes.Join(cmds, []byte("\n"))); err != nil {
		return err
	}
	for {
		_ = conn.SetReadDeadline(time.Now().Add(l.idle))
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		if err := l.handleFrames(msg); err != nil {
			return err
		}
	}
}

// sse listens over one EventSource stream, read by r3labs/sse's client.
// Its own reconnection is turned off (StopBackOff) and done by run, for
// three reasons LIBRARIES.md lists: it does not reconnect after a clean end
// of stream, its default backoff gives up after 15 minutes, and it ignores
// retry:. Reconnecting here also reopens with a cursor built from what was
// printed, and reports the resume. A watchdog ends a stream silent for
// longer than the heartbeat allows (the client has no read timeout).
func (l *listener) sse(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := r3sse.NewClient(l.base+"/connect/sse?"+l.streamQuery().Encode(), r3sse.ClientMaxBufferSize(listenMaxFrame))
	c.ReconnectStrategy = &backoff.StopBackOff{}
	c.ResponseValidator = func(_ *r3sse.Client, resp *http.Response) error {
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		defer resp.Body.Close()
		return statusError(resp)
	}
	var handled error
	var silent atomic.Bool
	watchdog := time.AfterFunc(l.idle, func() { silent.Store(true); cancel() })
	defer watchdog.Stop()
	err := c.SubscribeRawWithContext(ctx, func(ev *r3sse.Event) {
		if handled != nil || len(ev.Data) == 0 {
			return
		}
		handled = l.handleFrames(ev.Data)
		watchdog.Reset(l.idle)
		if handled != nil {
			cancel()
		}
	})
	switch {
	case handled != nil:
		return handled
	case silent.Load():
		return fmt.Errorf("no event for %s: the stream is dead or a proxy holds it", l.idle)
	case err == nil:
		return errors.New("the stream ended") // r3labs returns nil on a clean end
	}
	return err
}

// poll listens by long-polling until a request fails.
func (l *listener) poll(ctx context.Context) error {
	hc := &http.Client{Timeout: listenPollTimeout}
	q := l.streamQuery()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.base+"/connect/poll?"+q.Encode(), nil)
		if err != nil {
			return fatalError{err}
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			err := statusError(resp)
			resp.Body.Close()
			return err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, listenMaxFrame))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read poll answer: %w", err)
		}
		answer, err := wire.DecodePoll(body, "")
		if err != nil {
			return fmt.Errorf("read %w", err)
		}
		if e := answer.Error; e != nil { // JSONP's way to refuse; a plain poll refuses by status
			return l.handle(frame{Type: "error", Code: e.Code, Reason: e.Reason})
		}
		l.onConnected("")
		for _, f := range answer.Messages {
			if err := l.handle(f); err != nil {
				return err
			}
		}
		l.quietResumes()
		if *answer.Cursor != "" {
			q.Set("cursor", *answer.Cursor)
		}
	}
}
