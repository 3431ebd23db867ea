package apiclient

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
	"time"
)

// Defaults of Config.
const (
	DefaultRetries          = 3
	DefaultMinBackoff       = 100 * time.Millisecond
	DefaultMaxBackoff       = 2 * time.Second
	DefaultAttemptTimeout   = 10 * time.Second
	DefaultMaxResponseBytes = 128 << 20 // a full history page: 1000 × 64 KiB data, as JSON
)

// maxRetryAfter caps a Retry-After, in seconds.
const maxRetryAfter = 24 * 60 * 60

// NoRetries in Config.Retries makes every call a single attempt.
const NoRetries = -1

// Config configures a Client. Only URL is required.
type Config struct {
	// URL is the server's base URL, such as http://127.0.0.1:8080.
	URL string
	// APIKey is sent as Authorization: Bearer; it may also be a publisher
	// token. Empty sends none (a server on loopback without keys).
	APIKey string
	// HTTPClient makes the requests; nil means a client of its own.
	HTTPClient *http.Client
	// Retries is how many times a network failure or a 5xx answer is
	// retried; 0 means DefaultRetries, NoRetries none.
	Retries int
	// MinBackoff and MaxBackoff bound the full-jitter wait before a retry:
	// random in [0, min(MaxBackoff, MinBackoff × 2^attempt)].
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one request, so a hung connection is retried
	// within the caller's context instead of using all of it.
	AttemptTimeout time.Duration
	// MaxResponseBytes bounds an answer's body.
	MaxResponseBytes int64
	// UserAgent is sent with every request.
	UserAgent string
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("apiclient: URL %q is not an http(s) URL", c.URL)
	}
	switch {
	case c.Retries < NoRetries:
		return fmt.Errorf("apiclient: Retries %d: want ≥ 0, or NoRetries", c.Retries)
	case c.MinBackoff < 0, c.MaxBackoff < 0, c.AttemptTimeout < 0:
		return errors.New("apiclient: negative duration")
	case c.MaxResponseBytes < 0:
		return errors.New("apiclient: negative MaxResponseBytes")
	case strings.ContainsAny(c.APIKey, "\r\n"):
		return errors.New("apiclient: APIKey holds a line break")
	}
	return nil
}

// Client calls one server's API. See the package documentation.
type Client struct {
	base    string
	cfg     Config
	hc      *http.Client
	retries int
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{base: strings.TrimSuffix(cfg.URL, "/"), cfg: cfg, hc: cfg.HTTPClient, retries: cfg.Retries}
	switch c.retries {
	case 0:
		c.retries = DefaultRetries
	case NoRetries:
		c.retries = 0
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.cfg.MinBackoff == 0 {
		c.cfg.MinBackoff = DefaultMinBackoff
	}
	if c.cfg.MaxBackoff == 0 {
		c.cfg.MaxBackoff = DefaultMaxBackoff
	}
	if c.cfg.AttemptTimeout == 0 {
		c.cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.cfg.MaxResponseBytes == 0 {
		c.cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.cfg.UserAgent == "" {
		c.cfg.UserAgent = "waterspout-apiclient"
	}
	return c, nil
}

// answer is a successful response.
type answer struct {
	header http.Header
	body   []byte
}

// do sends method path with body (nil for none) and decodes a 200 answer's
// JSON into out. Network failures and 5xx answers are retried with the same
// body; 4xx answers are returned at once as *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) (http.Header, error) {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var last error
	for attempt := 0; ; attempt++ {
		a, err := c.attempt(ctx, method, target, body)
		var apiErr *Error
		switch {
		case err == nil:
			if err := json.Unmarshal(a.body, out); err != nil {
				return nil, fmt.Errorf("apiclient: %s %s: decode answer: %w", method, path, err)
			}
			return a.header, nil
		case ctx.Err() != nil:
			return nil, fmt.Errorf("apiclient: %s %s: %w", method, path, context.Cause(ctx))
		case errors.As(err, &apiErr):
			apiErr.Method, apiErr.Path, apiErr.Attempts = method, path, attempt+1
			if apiErr.Status < 500 || attempt >= c.retries {
				return nil, apiErr
			}
		case attempt >= c.retries:
			return nil, fmt.Errorf("apiclient: %s %s after %d attempts: %w", method, path, attempt+1, err)
		}
		last = err
		if err := c.wait(ctx, attempt, last); err != nil {
			return nil, fmt.Errorf("apiclient: %s %s: %w (last failure: %v)", method, path, err, last)
		}
	}
}

// wait sleeps before retry attempt+1: full jitter, or the server's
// Retry-After on a 5xx when it asks for longer (capped by MaxBackoff).
func (c *Client) wait(ctx context.Context, attempt int, last error) error {
	ceiling := c.cfg.MinBackoff << min(attempt, 30)
	if ceiling <= 0 || ceiling > c.cfg.MaxBackoff {
		ceiling = c.cfg.MaxBackoff
	}
	d := time.Duration(rand.Int64N(int64(ceiling) + 1))
	var apiErr *Error
	if errors.As(last, &apiErr) && apiErr.RetryAfter > d {
		d = min(apiErr.RetryAfter, c.cfg.MaxBackoff)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// attempt makes one request. A non-200 answer is an *Error.
func (c *Client) attempt(ctx context.Context, method, target string, body []byte) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		return answer{}, fmt.Errorf("read answer: %w", err)
	}
	if int64(len(b)) > c.cfg.MaxResponseBytes {
		return answer{}, fmt.Errorf("answer larger than %d bytes", c.cfg.MaxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return answer{}, errorOf(resp, b)
	}
	return answer{resp.Header, b}, nil
}

// wireError is a refusal as the server writes it, in the body of an
// answer ({"error": ...}) or of a broadcast's result.
type wireError struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// errorOf builds the *Error of a non-200 answer.
func errorOf(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode, Code: resp.StatusCode, Reason: http.StatusText(resp.StatusCode)}
	var eb struct {
		Error wireError `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error.Reason != "" {
		e.Code, e.Reason = eb.Error.Code, eb.Error.Reason
	}
	// Seconds only (WaterSpout sends those); capped so a hostile value
	// cannot overflow into a negative duration.
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(min(s, maxRetryAfter)) * time.Second
	}
	return e
}
