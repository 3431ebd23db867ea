package multinode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/apiclient"
	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

const (
	// idleTimeout is how long a client waits for any byte before it calls
	// the connection dead: above twice the 25 s heartbeat.
	idleTimeout = 60 * time.Second
	// pollRequestTimeout is above the server's 25 s poll hold.
	pollRequestTimeout = 40 * time.Second
)

// retryPause is how long a client waits before reconnecting: 100–200 ms, a
// short version of the bundled client's jittered backoff. Recovery times
// measured here include it.
func retryPause(ctx context.Context) {
	d := 100*time.Millisecond + rand.N(100*time.Millisecond)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// clients runs client goroutines and stops them all at once.
type clients struct {
	cancel context.CancelFunc
	ctx    context.Context
	wg     sync.WaitGroup
	once   sync.Once
}

// newClients returns a group whose clients stop at stop or when the test
// ends.
func newClients(t *testing.T) *clients {
	ctx, cancel := context.WithCancel(context.Background())
	c := &clients{ctx: ctx, cancel: cancel}
	t.Cleanup(c.stop)
	return c
}

func (c *clients) stop() {
	c.once.Do(func() {
		c.cancel()
		c.wg.Wait()
	})
}

func (c *clients) run(f func(ctx context.Context)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f(c.ctx)
	}()
}

// ws subscribes over WebSocket at base and reconnects, resuming from its
// position with since, until ctx ends.
func (c *clients) ws(base string, st *stream) {
	c.run(func(ctx context.Context) {
		dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		target := wiretest.WSURL(base, "/connect/ws")
		for ctx.Err() == nil {
			err := wsConnection(ctx, &dialer, target, st)
			if ctx.Err() != nil {
				return
			}
			st.lost(err)
			retryPause(ctx)
		}
	})
}

func wsConnection(ctx context.Context, dialer *websocket.Dialer, target string, st *stream) error {
	conn, _, err := dialer.DialContext(ctx, target, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	// Closing the connection is the only way to end a blocked read.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	read := func() ([]byte, error) {
		if err := conn.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
			return nil, err
		}
		_, msg, err := conn.ReadMessage()
		return msg, err
	}
	msg, err := read()
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	if fs, err := wire.DecodeFrames(msg); err != nil || len(fs) == 0 || fs[0].Type != "hello" {
		st.problemf("first WebSocket frame is not hello: %.200s", msg)
		return errors.New("no hello")
	}
	var since *session.Position
	if p, ok := st.since(); ok {
		since = &session.Position{Epoch: p.epoch, Offset: p.offset}
	}
	if err := conn.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if err := conn.WriteMessage(websocket.TextMessage, wire.Subscribe(1, st.channel, (*wire.Position)(since))); err != nil {
		return fmt.Errorf("send subscribe: %w", err)
	}
	handle := func(msg []byte) error {
		fs, err := wire.DecodeFrames(msg)
		if err != nil {
			st.problemf("WebSocket message %.200q: %v", msg, err)
		}
		for _, f := range fs {
			switch f.Type {
			case "error":
				// A subscribe refused (Redis down: 503) is retried on a new
				// connection, as the bundled client does.
				return fmt.Errorf("subscribe refused: %d %s", f.Code, f.Reason)
			case "disconnect":
				st.onDisconnect(f)
			default:
				st.onFrame(f)
			}
		}
		return nil
	}
	if _, batched, ok := bytes.Cut(msg, []byte("\n")); ok {
		if err := handle(batched); err != nil {
			return err
		}
	}
	for {
		msg, err := read()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if err := handle(msg); err != nil {
			return err
		}
	}
}

// sse subscribes over SSE at base and reconnects with Last-Event-ID, as a
// browser's EventSource does, until ctx ends.
func (c *clients) sse(base string, st *stream) {
	c.run(func(ctx context.Context) {
		client := &http.Client{Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		lastID := ""
		for ctx.Err() == nil {
			err := sseConnection(ctx, client, base, st, &lastID)
			if ctx.Err() != nil {
				return
			}
			st.lost(err)
			retryPause(ctx)
		}
	})
}

func sseConnection(ctx context.Context, client *http.Client, base string, st *stream, lastID *string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	header := http.Header{"Accept": {"text/event-stream"}}
	if *lastID != "" {
		header.Set("Last-Event-ID", *lastID)
	}
	resp, err := wiretest.OpenStream(ctx, client, http.MethodGet, base+"/connect/sse?channel="+url.QueryEscape(st.channel), header)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// A stream with no event (a heartbeat is a ping event) for longer than
	// two heartbeats is dead.
	idle := time.AfterFunc(idleTimeout, cancel)
	defer idle.Stop()

	// wire.SSEReader follows the HTML event stream rules: data lines are
	// joined, and the id becomes the last event id only when the event is
	// complete (a blank line), so a stream cut inside an event never
	// resumes past it.
	r := wire.NewSSEReader(resp.Body)
	sawHello := false
	for {
		ev, err := r.Next()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		idle.Reset(idleTimeout)
		if ev.HasID {
			*lastID = ev.ID
		}
		if ev.Data == "" {
			continue
		}
		fs, err := wire.DecodeFrames([]byte(ev.Data))
		if err != nil {
			st.problemf("SSE event %.200q: %v", ev.Data, err)
		}
		for _, f := range fs {
			switch {
			case !sawHello && f.Type != "hello":
				st.problemf("first SSE event is not hello: %.200s", ev.Data)
			case f.Type == "hello":
				sawHello = true
			case f.Type == "disconnect":
				st.onDisconnect(f)
			default:
				st.onFrame(f)
			}
		}
	}
}

// poll long-polls with the cursor, sending request i to targets[i mod
// len(targets)], until ctx ends. A failed request is repeated with the same
// cursor.
func (c *clients) poll(targets []string, st *stream) {
	c.run(func(ctx context.Context) {
		client := &http.Client{Transport: &http.Transport{}, Timeout: pollRequestTimeout}
		defer client.CloseIdleConnections()
		cursor := ""
		for i := 0; ctx.Err() == nil; i++ {
			target := targets[i%len(targets)]
			next, err := pollOnce(ctx, client, target, cursor, st)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				st.lost(err)
				retryPause(ctx)
				continue
			}
			cursor = next
		}
	})
}

func pollOnce(ctx context.Context, client *http.Client, target, cursor string, st *stream) (string, error) {
	q := url.Values{"channel": {st.channel}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	st.requested(target)
	r, err := wiretest.Do(ctx, client, http.MethodGet, target+"/connect/poll", q, nil)
	if err != nil {
		// A node killed while answering: the answer is dropped whole and the
		// poll repeated with the same cursor.
		return "", fmt.Errorf("poll: %w", err)
	}
	body := []byte(r.Body)
	if r.Status != http.StatusOK {
		return "", fmt.Errorf("poll: %d: %s", r.Status, bytes.TrimSpace(body))
	}
	answer, err := wire.DecodePoll(body, "")
	if err != nil || answer.Cursor == nil || *answer.Cursor == "" {
		st.problemf("poll answer %.200q: not {messages, cursor} (%v)", body, err)
		return "", errors.New("poll: bad answer")
	}
	for i, f := range answer.Messages {
		switch {
		case f.Type == "hello":
			if cursor != "" || i != 0 {
				st.problemf("hello in a poll with a cursor, or not first")
			}
		case f.Type == "disconnect":
			st.onDisconnect(f)
		default:
			st.onFrame(f)
		}
	}
	return *answer.Cursor, nil
}

// published is the accepted result of one publish.
type published struct {
	pos position
	// failed counts the attempts that failed before the one accepted: after
	// such a failure the publication may have been applied more than once
	// (see the Redis restart test).
	failed int
	at     time.Time
}

// publisher publishes numbered messages {"n": N} with the idempotency key
// "n-N" to its targets in turn, retrying a failed publish on the next target
// with the same key until it is accepted.
type publisher struct {
	channel string
	targets []string
	client  *http.Client
	apis    map[string]*apiclient.Client // by target

	mu       sync.Mutex
	changed  chan struct{}
	next     int
	results  map[int]published
	last     int            // the highest n accepted
	failures map[string]int // failed attempts by kind
	failedAt []time.Time    // when each failed attempt ended
	// slowestFailure is the longest a failed attempt took.
	slowestFailure time.Duration
}

func newPublisher(t *testing.T, channel string, targets ...string) *publisher {
	t.Helper()
	p := &publisher{
		channel: channel, targets: targets,
		client:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		apis:     map[string]*apiclient.Client{},
		changed:  make(chan struct{}),
		results:  map[int]published{},
		failures: map[string]int{},
	}
	for _, target := range targets {
		// The publisher retries itself, on the next node: one attempt per
		// call.
		api, err := apiclient.New(apiclient.Config{URL: target, APIKey: apiKey, HTTPClient: p.client,
			Retries: apiclient.NoRetries, AttemptTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		p.apis[target] = api
	}
	t.Cleanup(p.client.CloseIdleConnections)
	return p
}

// run publishes n = from..to at rate per second (as fast as it can when it
// falls behind), one at a time, so that n order is offset order.
func (p *publisher) run(ctx context.Context, from, to int, rate float64) error {
	start, period := time.Now(), time.Duration(float64(time.Second)/rate)
	for n := from; n <= to; n++ {
		if wait := time.Until(start.Add(time.Duration(n-from) * period)); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		if err := p.publish(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (p *publisher) publish(ctx context.Context, n int) error {
	req := apiclient.PublishRequest{Channel: p.channel, Data: payload{N: n}, Key: fmt.Sprintf("n-%d", n)}
	for failed := 0; ; failed++ {
		p.mu.Lock()
		target := p.targets[p.next%len(p.targets)]
		p.next++
		p.mu.Unlock()
		began := time.Now()
		pos, kind, err := p.post(ctx, target, req)
		if err == nil {
			p.mu.Lock()
			p.results[n] = published{pos: pos, failed: failed, at: time.Now()}
			p.last = max(p.last, n)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publish n=%d: %w", n, ctx.Err())
		}
		if kind == "" {
			return fmt.Errorf("publish n=%d: %w", n, err)
		}
		p.mu.Lock()
		p.failures[kind]++
		p.failedAt = append(p.failedAt, time.Now())
		p.slowestFailure = max(p.slowestFailure, time.Since(began))
		p.mu.Unlock()
		// The next target is tried at once, as a dead node is no reason to
		// wait; a pause after a whole round of failures keeps a Redis outage
		// from becoming a busy loop.
		if (failed+1)%len(p.targets) == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// post sends one publish. A failure worth retrying returns a kind (503, a
// refused connection…); any other failure returns kind "".
func (p *publisher) post(ctx context.Context, target string, req apiclient.PublishRequest) (position, string, error) {
	res, err := p.apis[target].Publish(ctx, req)
	var apiErr *apiclient.Error
	switch {
	case errors.As(err, &apiErr):
		switch apiErr.Status {
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
			return position{}, strconv.Itoa(apiErr.Status), err
		}
		return position{}, "", err
	case err != nil:
		return position{}, "connection failed", err
	case res.Channel != p.channel || res.Epoch == "" || res.Offset == 0:
		return position{}, "", fmt.Errorf("publish answer %+v", res)
	}
	return position{res.Epoch, res.Offset}, "", nil
}

// waitAccepted waits until n has been accepted.
func (p *publisher) waitAccepted(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		ok, ch := p.last >= n, p.changed
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for publish n=%d: %w", n, ctx.Err())
		case <-ch:
		}
	}
}

// pubStats is what a publisher did.
type pubStats struct {
	results        map[int]published
	failures       map[string]int // failed attempts by kind
	failedAt       []time.Time
	slowestFailure time.Duration
}

// snapshot returns copies of what the publisher did; call it after run
// returned.
func (p *publisher) snapshot() pubStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := pubStats{results: make(map[int]published, len(p.results)), failures: make(map[string]int, len(p.failures)),
		failedAt: append([]time.Time(nil), p.failedAt...), slowestFailure: p.slowestFailure}
	for k, v := range p.results {
		st.results[k] = v
	}
	for k, v := range p.failures {
		st.failures[k] = v
	}
	return st
}
