package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Target kinds.
const (
	KindWaterSpout = "waterspout"
	KindNchan      = "nchan"
	KindCentrifugo = "centrifugo"
	// KindFloor names the results of the floor scenario, which runs
	// against no server.
	KindFloor = "floor"
)

// Transports a subscriber can use.
const (
	TransportWS   = "ws"
	TransportSSE  = "sse"
	TransportPoll = "poll"
)

// Target is one server under test and how to reach it.
type Target struct {
	// Kind is KindWaterSpout, KindNchan or KindCentrifugo: it picks the
	// paths and framing.
	Kind string
	// URL is the server's base URL, http://host:port.
	URL string
	// APIKey authenticates publishes: WaterSpout's as Authorization:
	// Bearer, Centrifugo's as X-API-Key. Nchan's publisher is open.
	APIKey string
	// PID is the server's process (nginx: the master); 0 measures no
	// memory or CPU.
	PID int

	base *url.URL
}

func (t *Target) validate() error {
	switch t.Kind {
	case KindWaterSpout, KindNchan, KindCentrifugo:
	default:
		return fmt.Errorf("unknown server kind %q (want %s, %s or %s)", t.Kind, KindWaterSpout, KindNchan, KindCentrifugo)
	}
	u, err := url.Parse(t.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("%s URL %q is not an http://host:port URL", t.Kind, t.URL)
	}
	if t.PID < 0 {
		return fmt.Errorf("%s pid %d is negative", t.Kind, t.PID)
	}
	t.base = u
	return nil
}

// supports reports whether a transport can be measured on the target. Nchan's
// long-poll resumes by Last-Modified/Etag, not by a cursor, and is not
// driven here; Centrifugo has no long-poll transport (its HTTP-streaming
// and SSE emulation keep a stream open, as SSE does).
func (t *Target) supports(transport string) bool {
	return t.Kind == KindWaterSpout || transport != TransportPoll
}

// hasPositions reports whether subscribers can resume from a position:
// Centrifugo's WebSocket subscriptions can, with force_recovery on.
func (t *Target) hasPositions() bool { return t.Kind == KindWaterSpout || t.Kind == KindCentrifugo }

func (t *Target) hostport() string { return t.base.Host }

// port is the server's TCP port (0 if the URL names none).
func (t *Target) port() int {
	p, _ := strconv.Atoi(t.base.Port())
	return p
}

// wsURL is where a WebSocket subscriber of ch connects; on WaterSpout the
// channel is subscribed by a command after hello, on Centrifugo by a
// subscribe command sent with the connect command.
func (t *Target) wsURL(ch string) string {
	switch t.Kind {
	case KindNchan:
		return "ws://" + t.base.Host + "/sub/ws?id=" + url.QueryEscape(ch)
	case KindCentrifugo:
		return "ws://" + t.base.Host + "/connection/websocket"
	}
	return "ws://" + t.base.Host + "/connect/ws"
}

// streamPath is the request path of an SSE stream or a poll of ch.
func (t *Target) streamPath(transport, ch, cursor string) string {
	switch t.Kind {
	case KindNchan:
		return "/sub/" + transport + "?id=" + url.QueryEscape(ch)
	case KindCentrifugo:
		// Unidirectional SSE: the connect request rides in the URL and
		// asks for a server-side subscription to ch (transport is sse).
		return "/connection/uni_sse?" + url.Values{"cf_connect": {string(centrifugoUniConnect(ch))}}.Encode()
	}
	q := url.Values{"channel": {ch}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return "/connect/" + transport + "?" + q.Encode()
}

// publishRequest builds the HTTP request that publishes payload to ch.
func (t *Target) publishRequest(ctx context.Context, ch string, payload []byte) (*http.Request, error) {
	var endpoint string
	var body []byte
	if t.Kind == KindNchan {
		endpoint = t.base.String() + "/pub?id=" + url.QueryEscape(ch)
		body = payload
	} else {
		// WaterSpout and Centrifugo take the same body at the same path.
		endpoint = strings.TrimSuffix(t.base.String(), "/") + "/api/publish"
		body = make([]byte, 0, len(payload)+len(ch)+32)
		body = append(body, `{"channel":`...)
		chJSON, _ := json.Marshal(ch)
		body = append(body, chJSON...)
		body = append(body, `,"data":`...)
		body = append(body, payload...)
		body = append(body, '}')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build publish request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if t.APIKey != "" {
		switch t.Kind {
		case KindWaterSpout:
			req.Header.Set("Authorization", "Bearer "+t.APIKey)
		case KindCentrifugo:
			req.Header.Set("X-API-Key", t.APIKey)
		}
	}
	return req, nil
}

// publish sends one publication and reads the answer to the end so the
// connection is reused.
func (t *Target) publish(ctx context.Context, c *http.Client, ch string, payload []byte) error {
	req, err := t.publishRequest(ctx, ch, payload)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", ch, err)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	// Nchan answers 201 or 202; WaterSpout 200. Centrifugo answers 200
	// with the error in the body.
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("publish to %s: %d %s", ch, resp.StatusCode, bytes.TrimSpace(answer))
	}
	if t.Kind == KindCentrifugo {
		if err := centrifugoAPIError(answer); err != nil {
			return fmt.Errorf("publish to %s: %w", ch, err)
		}
	}
	return nil
}

// publishBatch sends a POST /api/batch body of n publications (WaterSpout
// only) and reads the answer. It returns how many were published; err
// says why the request, or the first publication that failed, failed.
func (t *Target) publishBatch(ctx context.Context, c *http.Client, body []byte, n int) (int, error) {
	endpoint := strings.TrimSuffix(t.base.String(), "/") + "/api/batch"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build batch request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if t.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+t.APIKey)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("batch: %w", err)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("batch: %d %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	var a struct {
		Results []struct {
			Error *struct {
				Code   int    `json:"code"`
				Reason string `json:"reason"`
			} `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(answer, &a); err != nil || len(a.Results) != n {
		return 0, fmt.Errorf("batch: %d results for %d publications (%v): %.200s", len(a.Results), n, err, answer)
	}
	published := 0
	var first error
	for i, r := range a.Results {
		switch {
		case r.Error == nil:
			published++
		case first == nil:
			first = fmt.Errorf("batch: publications[%d]: %d %s", i, r.Error.Code, r.Error.Reason)
		}
	}
	return published, first
}

// newPublishClient returns a keep-alive HTTP client for conns concurrent
// publishers.
func newPublishClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConns:        conns + 8,
			MaxIdleConnsPerHost: conns + 8,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// dialer opens subscriber connections, spreading them over source addresses
// 127.0.0.2, 127.0.0.3, … when the server is on loopback: one source
// address has only ~28,000 ephemeral ports towards one server port.
type dialer struct {
	sources []net.IP
	next    atomic.Uint64
}

func newDialer(target *Target, sources int) *dialer {
	d := &dialer{}
	host := target.base.Hostname()
	ip := net.ParseIP(host)
	if sources <= 0 || ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return d
	}
	for i := range sources {
		d.sources = append(d.sources, net.IPv4(127, 0, byte((2+i)/256), byte((2+i)%256)))
	}
	return d
}

// dial connects to addr. rcvBuf > 0 shrinks the socket's receive buffer,
// so that a client that stops reading fills up quickly.
func (d *dialer) dial(ctx context.Context, addr string, rcvBuf int) (net.Conn, error) {
	nd := net.Dialer{Timeout: 30 * time.Second}
	if len(d.sources) > 0 {
		ip := d.sources[d.next.Add(1)%uint64(len(d.sources))]
		nd.LocalAddr = &net.TCPAddr{IP: ip}
	}
	if rcvBuf > 0 {
		nd.Control = func(_, _ string, c syscall.RawConn) error { return setRcvBuf(c, rcvBuf) }
	}
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}
