package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/waterspout/waterspout/apiclient"
)

// Limits of `waterspout publish`.
const (
	maxStdinBytes = 16 << 20
	defaultServer = "http://127.0.0.1:8080"
)

const publishUsage = `Usage: waterspout publish CHANNEL JSON [flags]

Publishes JSON (any JSON value; "-" reads it from standard input) to CHANNEL
through a server's POST /api/publish, and prints the answer:
{"channel":…,"offset":…,"epoch":…}. A repeated --key is answered with the
original publication and delivered only once. Without --key, a key is
generated, so that retries of network failures and 5xx answers (through the
Go package github.com/waterspout/waterspout/apiclient) never publish twice.

Flags:
  --server URL     the server (env WATERSPOUT_SERVER, default ` + defaultServer + `)
  --api-key KEY    API key (env WATERSPOUT_API_KEY, else the first of WATERSPOUT_API_KEYS)
  --key KEY        idempotency key: publishing again with it delivers nothing
  --timeout D      give up after this long (default 10s)
  -h, --help       show this help
`

func runPublish(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("publish")
	serverURL := e.serverFlag(fs)
	apiKey := e.apiKeyFlag(fs)
	key := fs.String("key", "", "")
	timeout := durationFlag(fs, "timeout", 10*time.Second)
	pos, err := e.parseArgs(fs, args, publishUsage)
	if err != nil {
		return err
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
	if _, err := apiURL(*serverURL, "/api/publish"); err != nil {
		return usageError{err}
	}
	if *timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	c, err := apiclient.New(apiclient.Config{URL: *serverURL, APIKey: *apiKey, UserAgent: "waterspout-publish"})
	if err != nil {
		return usageError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := c.Publish(ctx, apiclient.PublishRequest{Channel: channel, Data: json.RawMessage(data), Key: *key})
	var apiErr *apiclient.Error
	if errors.As(err, &apiErr) {
		return fmt.Errorf("server answered %d: %s", apiErr.Status, apiErr.Reason)
	}
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	answer, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	if _, err := fmt.Fprintf(e.stdout, "%s\n", answer); err != nil {
		return err
	}
	if res.Duplicate {
		fmt.Fprintln(e.stderr, "note: this key was used before; nothing was delivered again")
	}
	return nil
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
