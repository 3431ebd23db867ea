package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/waterspout/waterspout/server"
)

const healthUsage = `Usage: waterspout health [--url URL] [--config FILE] [--timeout D]

Checks a server's liveness: GET /livez, exit 0 on 200 and 1 otherwise. It
needs no shell or curl, so a container built FROM scratch can use it as its
HEALTHCHECK. Without --url it asks the server this environment configures,
at the address serve would listen on: WATERSPOUT_ADDR, else the addr of the
config file (--config or WATERSPOUT_CONFIG), else 127.0.0.1:8080; a
wildcard host such as 0.0.0.0 is asked on loopback.

Flags:
  --url URL       the liveness URL to check
  --config FILE   the server's JSON config file (default $WATERSPOUT_CONFIG)
  --timeout D     give up after this long (default 3s)
  -h, --help      show this help
`

func runHealth(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("health")
	target := fs.String("url", "", "")
	config := fs.String("config", "", "")
	timeout := fs.Duration("timeout", 3*time.Second, "")
	pos, err := e.parseArgs(fs, args, healthUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	if *target == "" {
		addr, err := serveAddr(*config, e.getenv)
		if err != nil {
			return usageError{err}
		}
		if *target, err = livezURL(addr); err != nil {
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

// serveAddr is the address serve listens on in this environment, read the
// way serve reads it (config file, then environment), so that an address
// set only in the config file is found.
func serveAddr(config string, getenv func(string) string) (string, error) {
	var args []string
	if config != "" {
		args = []string{"--config", config}
	}
	cfg, err := server.LoadConfig(args, getenv)
	if err != nil {
		return "", err
	}
	return cfg.Addr, nil
}

// livezURL is where a server listening on addr answers /livez.
func livezURL(addr string) (string, error) {
	if addr == "" {
		return "http://127.0.0.1:8080/livez", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/livez", nil
}
