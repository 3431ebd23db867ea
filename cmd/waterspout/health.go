package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

const healthUsage = `Usage: waterspout health [--url URL] [--timeout D]

Checks a server's liveness: GET /livez, exit 0 on 200 and 1 otherwise. It
needs no shell or curl, so a container built FROM scratch can use it as its
HEALTHCHECK. Without --url it asks the server this environment configures:
http://HOST:PORT/livez from WATERSPOUT_ADDR (a wildcard host such as 0.0.0.0
is asked on loopback), else http://127.0.0.1:8080/livez.

Flags:
  --url URL       the liveness URL to check
  --timeout D     give up after this long (default 3s)
  -h, --help      show this help
`

func runHealth(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	target := fs.String("url", "", "")
	timeout := fs.Duration("timeout", 3*time.Second, "")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, healthUsage)
		return err
	}
	if err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	if *target == "" {
		if *target, err = livezURL(e.getenv("WATERSPOUT_ADDR")); err != nil {
			return usageError{err}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return usagef("--url %q: %v", *target, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %s", *target, resp.Status)
	}
	_, err = fmt.Fprintln(e.stdout, "ok")
	return err
}

// livezURL is where a server listening on addr answers /livez.
func livezURL(addr string) (string, error) {
	if addr == "" {
		return "http://127.0.0.1:8080/livez", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("WATERSPOUT_ADDR %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/livez", nil
}
