package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Limits of `waterspout publish`.
const (
	maxStdinBytes  = 16 << 20
	maxAnswerBytes = 1 << 20
	defaultServer  = "http://127.0.0.1:8080"
)

const publishUsage = `Usage: waterspout publish CHANNEL JSON [flags]

Publishes JSON (any JSON value; "-" reads it from standard input) to CHANNEL
through a server's POST /api/publish, and prints the answer:
{"channel":…,"offset":…,"epoch":…}. A repeated --key is answered with the
original publication and delivered only once.

Flags:
  --server URL     the server (env WATERSPOUT_SERVER, default ` + defaultServer + `)
  --api-key KEY    API key (env WATERSPOUT_API_KEY, else the first of WATERSPOUT_API_KEYS)
  --key KEY        idempotency key: publishing again with it delivers nothing
  --timeout D      give up after this long (default 10s)
  -h, --help       show this help
`

func runPublish(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	serverURL := fs.String("server", firstNonEmpty(e.getenv("WATERSPOUT_SERVER"), defaultServer), "")
	apiKey := fs.String("api-key", defaultAPIKey(e.getenv), "")
	key := fs.String("key", "", "")
	timeout := durationFlag(fs, "timeout", 10*time.Second)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, publishUsage)
		return err
	}
	if err != nil {
		return usageError{err}
	}
	if len(pos) != 2 {
		return usagef("want CHANNEL and JSON, got %d arguments", len(pos))
	}
	channel, data := pos[0], []byte(pos[1])
	if pos[1] == "-" {
		if data, err = io.ReadAll(io.LimitReader(e.stdin, maxStdinBytes)); err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
	}
	if !json.Valid(data) {
		return usagef("the message is not valid JSON (to send text, quote it: '\"hello\"')")
	}
	endpoint, err := apiURL(*serverURL, "/api/publish")
	if err != nil {
		return usageError{err}
	}
	if *timeout <= 0 {
		return usagef("--timeout must be positive")
	}

	body, err := json.Marshal(struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
		Key     string          `json:"key,omitempty"`
	}{channel, data, *key})
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if *apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+*apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server answered %s", describeError(resp.StatusCode, answer))
	}
	if _, err := fmt.Fprintf(e.stdout, "%s\n", bytes.TrimSpace(answer)); err != nil {
		return err
	}
	if resp.Header.Get("X-WaterSpout-Duplicate") == "true" {
		fmt.Fprintln(e.stderr, "note: this key was used before; nothing was delivered again")
	}
	return nil
}

// describeError turns an error answer into "401: invalid API key".
func describeError(status int, body []byte) string {
	var eb struct {
		Error struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error.Reason != "" {
		return fmt.Sprintf("%d: %s", status, eb.Error.Reason)
	}
	return fmt.Sprintf("%d %s", status, http.StatusText(status))
}

// apiURL joins a server base URL and an API path.
func apiURL(base, path string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--server %q is not an http(s) URL", base)
	}
	return strings.TrimSuffix(u.String(), "/") + path, nil
}

// defaultAPIKey lets `publish` run beside a server configured through the
// environment without repeating its key.
func defaultAPIKey(getenv func(string) string) string {
	if k := getenv("WATERSPOUT_API_KEY"); k != "" {
		return k
	}
	k, _, _ := strings.Cut(getenv("WATERSPOUT_API_KEYS"), ",")
	return strings.TrimSpace(k)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
