package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/session"
)

// handshakeTimeout bounds connecting and subscribing one client.
const handshakeTimeout = 30 * time.Second

// recorder is what every subscriber of a scenario reports to.
type recorder struct {
	clock time.Time // payload times are nanoseconds since clock
	hist  atomic.Pointer[histogram]
	errs  errorLog
	// refused counts 429 answers to the subscribers' HTTP requests.
	refused atomic.Int64
}

func newRecorder() *recorder {
	r := &recorder{clock: time.Now()}
	r.hist.Store(&histogram{})
	return r
}

// now returns the time on the payload clock.
func (r *recorder) now() int64 { return int64(time.Since(r.clock)) }

// errorLog counts errors and keeps the first few for the report.
type errorLog struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.first) < 5 {
		l.first = append(l.first, err.Error())
	}
}

func (l *errorLog) snapshot() (int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, append([]string(nil), l.first...)
}

// client is one subscriber of one channel over one transport. Its reader
// goroutine (run) is the only writer of its counters and position; the
// scenario reads the atomics at any time and the position after run ends.
type client struct {
	target    *Target
	transport string
	ch        string
	rec       *recorder
	dialer    *dialer
	chIdx     int  // index of ch in the publisher's channels
	rcvBuf    int  // > 0: a small receive buffer (slow consumers)
	expectEnd bool // slow consumers: being dropped is not an error

	last, count, gaps, dups atomic.Int64
	warm                    atomic.Bool
	stalled                 atomic.Bool   // stop reading until resume is closed
	resume                  chan struct{} // closed to let a stalled reader go on
	disconnect              atomic.Int64  // the code of a disconnect frame received
	closing                 atomic.Bool

	// position in the channel (WaterSpout only), for resuming.
	epoch  string
	offset int64
	cursor string // long-poll cursor

	done chan struct{} // closed when run returns

	ws     *websocket.Conn
	connMu sync.Mutex // conn changes while run polls; close comes from the scenario
	conn   net.Conn
	br     *bufio.Reader // the HTTP connection (SSE, poll)
	body   *bufio.Reader // the SSE stream
	buf    bytes.Buffer
}

func newClient(t *Target, transport, ch string, rec *recorder, d *dialer) *client {
	return &client{target: t, transport: transport, ch: ch, rec: rec, dialer: d, resume: make(chan struct{})}
}

// connect opens the connection and subscribes. With resume, a WaterSpout
// subscriber resumes from its position and must recover.
func (c *client) connect(ctx context.Context, resume bool) error {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	c.closing.Store(false)
	var err error
	switch c.transport {
	case TransportWS:
		err = c.connectWS(ctx, resume)
	case TransportSSE:
		err = c.connectSSE(ctx)
	case TransportPoll:
		err = c.connectPoll(ctx)
	default:
		err = fmt.Errorf("unknown transport %q", c.transport)
	}
	if err != nil {
		return fmt.Errorf("%s %s subscriber of %s: %w", c.target.Kind, c.transport, c.ch, err)
	}
	return nil
}

func (c *client) connectWS(ctx context.Context, resume bool) error {
	wd := websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return c.dialer.dial(ctx, addr, c.rcvBuf)
		},
		HandshakeTimeout: handshakeTimeout,
		ReadBufferSize:   4096,
		WriteBufferSize:  1024,
	}
	ws, resp, err := wd.DialContext(ctx, c.target.wsURL(c.ch), nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("websocket handshake: %w (status %d)", err, resp.StatusCode)
		}
		return fmt.Errorf("websocket handshake: %w", err)
	}
	c.ws = ws
	switch c.target.Kind {
	case KindNchan:
		return nil // the channel is in the URL
	case KindCentrifugo:
		return c.subscribeCentrifugo(ctx, resume)
	}
	deadline, _ := ctx.Deadline()
	_ = ws.SetReadDeadline(deadline)
	if _, hello, err := ws.ReadMessage(); err != nil || frameType(hello) != "hello" {
		ws.Close()
		return fmt.Errorf("read hello: %v %.80q", err, hello)
	}
	var since *session.Position
	if resume {
		since = &session.Position{Epoch: c.epoch, Offset: uint64(c.offset)}
	}
	b := wire.Subscribe(1, c.ch, (*wire.Position)(since))
	_ = ws.SetWriteDeadline(deadline)
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		ws.Close()
		return fmt.Errorf("write subscribe: %w", err)
	}
	// Messages may follow subscribed in the same WebSocket message (the
	// replay): handle them after it.
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			return fmt.Errorf("wait for subscribed: %w", err)
		}
		lines := bytes.Split(msg, []byte{'\n'})
		for i, line := range lines {
			if frameType(line) != "subscribed" {
				if err := c.handle(line); err != nil {
					ws.Close()
					return err
				}
				continue
			}
			var sub wire.Frame
			if err := json.Unmarshal(line, &sub); err != nil {
				ws.Close()
				return fmt.Errorf("decode subscribed: %w", err)
			}
			if resume && (sub.Recovered == nil || !*sub.Recovered) {
				ws.Close()
				return fmt.Errorf("resume from %s/%d was not recovered", c.epoch, c.offset)
			}
			c.epoch, c.offset = sub.Epoch, int64(sub.Offset)
			for _, rest := range lines[i+1:] {
				if err := c.handle(rest); err != nil {
					ws.Close()
					return err
				}
			}
			_ = ws.SetReadDeadline(time.Time{})
			_ = ws.SetWriteDeadline(time.Time{})
			return nil
		}
	}
}

// subscribeCentrifugo connects and subscribes on a Centrifugo WebSocket
// in one message and waits for both replies; publications and pings that
// follow in the same messages are handled. With resume, the subscription
// recovers from the client's position and must be recovered.
func (c *client) subscribeCentrifugo(ctx context.Context, resume bool) error {
	ws := c.ws
	deadline, _ := ctx.Deadline()
	_ = ws.SetReadDeadline(deadline)
	_ = ws.SetWriteDeadline(deadline)
	var since *centrifugoPosition
	if resume {
		since = &centrifugoPosition{Epoch: c.epoch, Offset: uint64(c.offset)}
	}
	if err := ws.WriteMessage(websocket.TextMessage, centrifugoHandshake(c.ch, since)); err != nil {
		ws.Close()
		return fmt.Errorf("write connect and subscribe: %w", err)
	}
	for subscribed := false; !subscribed; {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			return fmt.Errorf("wait for the subscribe reply: %w", err)
		}
		for len(msg) > 0 {
			var line []byte
			line, msg, _ = bytes.Cut(msg, []byte("\n"))
			f, err := parseCentrifugo(line)
			if err != nil {
				ws.Close()
				return err
			}
			if f.Kind == centrifugoReply {
				if f.Code != 0 {
					ws.Close()
					return fmt.Errorf("command %d refused: %d %s", f.ID, f.Code, f.Reason)
				}
				if f.ID == centrifugoSubscribeID {
					if err := c.subscribedCentrifugo(f.Sub, since); err != nil {
						ws.Close()
						return err
					}
					subscribed = true
				}
				continue
			}
			if err := c.handleCentrifugo(line, f); err != nil {
				ws.Close()
				return err
			}
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	_ = ws.SetWriteDeadline(time.Time{})
	return nil
}

// subscribedCentrifugo takes a subscribe result: the publications it
// recovered since the client's position, then the stream's position.
func (c *client) subscribedCentrifugo(sub *centrifugoSubscribed, since *centrifugoPosition) error {
	if sub == nil || sub.Epoch == "" {
		return errors.New("subscribe result without a position (is force_recovery on?)")
	}
	if since != nil && !sub.Recovered {
		return fmt.Errorf("resume from %s/%d was not recovered", since.Epoch, since.Offset)
	}
	for _, pub := range sub.Publications {
		if seq, t, ok := scanPayload(pub); ok {
			c.onPayload(seq, t)
		}
	}
	c.epoch, c.offset = sub.Epoch, int64(sub.Offset)
	return nil
}

// request writes a GET on the client's HTTP connection and reads the
// response head.
func (c *client) request(ctx context.Context, path string, accept string) (*http.Response, error) {
	c.connMu.Lock()
	conn := c.conn
	c.connMu.Unlock()
	if conn == nil {
		var err error
		if conn, err = c.dialer.dial(ctx, c.target.hostport(), c.rcvBuf); err != nil {
			return nil, err
		}
		c.connMu.Lock()
		closing := c.closing.Load()
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 16<<10)
		c.connMu.Unlock()
		if closing {
			conn.Close()
			return nil, net.ErrClosed
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + c.target.hostport() + "\r\nAccept: " + accept + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		c.rec.refused.Add(1)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return resp, nil
}

func (c *client) connectSSE(ctx context.Context) error {
	resp, err := c.request(ctx, c.target.streamPath(TransportSSE, c.ch, ""), "text/event-stream")
	if err != nil {
		c.closeConn()
		return err
	}
	c.body = bufio.NewReaderSize(resp.Body, 16<<10)
	return nil
}

// pollAnswer is a WaterSpout long-poll answer.
type pollAnswer struct {
	Messages []json.RawMessage `json:"messages"`
	Cursor   string            `json:"cursor"`
}

// connectPoll makes the first poll, which answers at once with the cursor.
func (c *client) connectPoll(ctx context.Context) error {
	if err := c.poll(ctx); err != nil {
		c.closeConn()
		return err
	}
	return nil
}

// poll makes one long-poll request and handles its answer.
func (c *client) poll(ctx context.Context) error {
	resp, err := c.request(ctx, c.target.streamPath(TransportPoll, c.ch, c.cursor), "application/json")
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read poll answer: %w", err)
	}
	if resp.Close {
		c.closeConn()
	}
	var a pollAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("decode poll answer: %w", err)
	}
	for _, m := range a.Messages {
		if err := c.handle(m); err != nil {
			return err
		}
	}
	c.cursor = a.Cursor
	return nil
}

// start runs the reader in its own goroutine.
func (c *client) start(ctx context.Context) {
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		c.run(ctx)
	}()
}

// stop closes the client and waits for its reader.
func (c *client) stop() {
	c.close()
	if c.done != nil {
		<-c.done
	}
}

// unstall lets a stalled reader go on.
func (c *client) unstall() {
	if c.stalled.Swap(false) {
		close(c.resume)
	}
}

// run reads until the connection ends; it reports an error unless the
// scenario closed the client.
func (c *client) run(ctx context.Context) {
	var err error
	switch c.transport {
	case TransportWS:
		err = c.runWS()
	case TransportSSE:
		err = c.runSSE()
	case TransportPoll:
		err = c.runPoll(ctx)
	}
	if err != nil && !c.closing.Load() && !c.expectEnd {
		c.rec.errs.add(fmt.Errorf("%s %s subscriber of %s: %w", c.target.Kind, c.transport, c.ch, err))
	}
}

// waitIfStalled blocks a slow consumer's reader while it is stalled.
func (c *client) waitIfStalled() {
	if c.stalled.Load() {
		<-c.resume
	}
}

func (c *client) runWS() error {
	for {
		c.waitIfStalled()
		_, r, err := c.ws.NextReader()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok && c.target.Kind == KindCentrifugo {
				c.disconnect.Store(int64(ce.Code)) // Centrifugo's disconnect code
			}
			return err
		}
		c.buf.Reset()
		if _, err := c.buf.ReadFrom(r); err != nil {
			return err
		}
		msg := c.buf.Bytes()
		if c.target.Kind == KindNchan {
			if err := c.handle(msg); err != nil {
				return err
			}
			continue
		}
		for len(msg) > 0 {
			var line []byte
			line, msg, _ = bytes.Cut(msg, []byte("\n"))
			if err := c.handle(line); err != nil {
				return err
			}
		}
	}
}

func (c *client) runSSE() error {
	var long []byte // a line longer than the reader's buffer
	for {
		c.waitIfStalled()
		line, err := c.body.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if err != nil {
			return err
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			if err := c.handle(bytes.TrimSpace(data)); err != nil {
				return err
			}
		}
	}
}

func (c *client) runPoll(ctx context.Context) error {
	for {
		c.waitIfStalled()
		if err := c.poll(ctx); err != nil {
			if c.closing.Load() || ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// handle takes one frame: a message with a payload, or a WaterSpout control
// frame.
func (c *client) handle(frame []byte) error {
	if seq, t, ok := scanPayload(frame); ok {
		if c.target.Kind == KindCentrifugo {
			if offset, ok := scanCentrifugoOffset(frame); ok {
				c.offset = int64(offset)
			}
		} else if c.target.hasPositions() {
			if epoch, offset, ok := scanPosition(frame); ok {
				if epoch != c.epoch {
					c.epoch = epoch
				}
				c.offset = offset
			}
		}
		c.onPayload(seq, t)
		return nil
	}
	switch c.target.Kind {
	case KindNchan:
		return nil
	case KindCentrifugo:
		f, err := parseCentrifugo(frame)
		if err != nil {
			return err
		}
		return c.handleCentrifugo(frame, f)
	}
	switch frameType(frame) {
	case "disconnect", "error":
		var d wire.Error // the code and reason of either frame
		_ = json.Unmarshal(frame, &d)
		c.disconnect.Store(int64(d.Code))
		return fmt.Errorf("server sent %.200s", frame)
	}
	return nil
}

// handleCentrifugo acts on one decoded Centrifugo reply line: it counts a
// publication, answers a ping on a WebSocket (over SSE pings need no
// answer), and turns a disconnect or a refused command into an error.
func (c *client) handleCentrifugo(line []byte, f centrifugoFrame) error {
	switch f.Kind {
	case centrifugoPublication:
		c.onPayload(f.Seq, f.T)
	case centrifugoPing:
		if c.ws != nil {
			if err := c.ws.WriteMessage(websocket.TextMessage, centrifugoPong); err != nil {
				return fmt.Errorf("answer ping: %w", err)
			}
		}
	case centrifugoDisconnect:
		c.disconnect.Store(int64(f.Code))
		return fmt.Errorf("server sent %.200s", line)
	case centrifugoReply:
		if f.Code != 0 {
			return fmt.Errorf("server sent %.200s", line)
		}
	}
	return nil
}

// onPayload counts a publication: in order, a gap, or a duplicate. last
// is stored after everything else, because the scenario waits on last
// (drain) and then reads count, gaps and the histogram: once it sees a
// sequence number, that publication's counting is done.
func (c *client) onPayload(seq, t int64) {
	if seq == 0 {
		c.warm.Store(true)
		return
	}
	last := c.last.Load()
	switch {
	case seq <= last:
		c.dups.Add(1)
		return
	case seq > last+1:
		c.gaps.Add(seq - last - 1)
	}
	c.rec.hist.Load().Record(time.Duration(c.rec.now() - t))
	c.count.Add(1)
	c.last.Store(seq)
}

// close ends the connection; run returns.
func (c *client) close() {
	c.closing.Store(true)
	if c.ws != nil {
		c.ws.Close()
	}
	c.closeConn()
	c.unstall()
}

// closeConn closes the HTTP connection; the next request dials again.
func (c *client) closeConn() {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}
