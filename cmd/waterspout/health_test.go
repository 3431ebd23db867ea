package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHealthCommand(t *testing.T) {
	url := apiServer(t)
	ctx := context.Background()
	if r := invoke(t, ctx, nil, "", "health", "--url", url+"/livez"); r.code != 0 || r.stdout != "ok\n" {
		t.Errorf("healthy server: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := invoke(t, ctx, nil, "", "health", "--url", url+"/nope"); r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Errorf("a 404: %d %q", r.code, r.stderr)
	}
	if r := invoke(t, ctx, nil, "", "health", "--url", "http://127.0.0.1:1/livez"); r.code != 1 || !strings.Contains(r.stderr, "unhealthy") {
		t.Errorf("nothing listening: %d %q", r.code, r.stderr)
	}
	if r := invoke(t, ctx, map[string]string{"WATERSPOUT_ADDR": "bad"}, "", "health"); r.code != 2 {
		t.Errorf("bad WATERSPOUT_ADDR: %d %q", r.code, r.stderr)
	}
}

// TestHealthFindsConfiguredAddr checks health asks the address serve would
// listen on when it is set only in the config file, named by --config or
// WATERSPOUT_CONFIG, and that WATERSPOUT_ADDR overrides the file as for serve.
func TestHealthFindsConfiguredAddr(t *testing.T) {
	url := apiServer(t)
	ctx := context.Background()
	addr := strings.TrimPrefix(url, "http://")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"addr":"`+addr+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "wrong.json")
	if err := os.WriteFile(wrong, []byte(`{"addr":"127.0.0.1:1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := invoke(t, ctx, nil, "", "health", "--config", good); r.code != 0 || r.stdout != "ok\n" {
		t.Errorf("--config: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := invoke(t, ctx, map[string]string{"WATERSPOUT_CONFIG": good}, "", "health"); r.code != 0 || r.stdout != "ok\n" {
		t.Errorf("WATERSPOUT_CONFIG: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := invoke(t, ctx, map[string]string{"WATERSPOUT_CONFIG": wrong, "WATERSPOUT_ADDR": addr}, "", "health"); r.code != 0 {
		t.Errorf("WATERSPOUT_ADDR over the file: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := invoke(t, ctx, nil, "", "health", "--config", wrong); r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("the file's address down: %d %q", r.code, r.stderr)
	}
	if r := invoke(t, ctx, nil, "", "health", "--config", filepath.Join(dir, "missing.json")); r.code != 2 {
		t.Errorf("missing config file: %d %q", r.code, r.stderr)
	}
}

func TestLivezURL(t *testing.T) {
	for addr, want := range map[string]string{
		"":               "http://127.0.0.1:8080/livez",
		"0.0.0.0:8080":   "http://127.0.0.1:8080/livez",
		":9000":          "http://127.0.0.1:9000/livez",
		"[::]:8080":      "http://[::1]:8080/livez",
		"10.0.0.5:8080":  "http://10.0.0.5:8080/livez",
		"127.0.0.1:8081": "http://127.0.0.1:8081/livez",
	} {
		if got, err := livezURL(addr); err != nil || got != want {
			t.Errorf("livezURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
}

// TestSystemdUnit checks the example unit runs the binary's serve with the
// key from an environment file, restarts on failure and has no root.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("../../deploy/waterspout.service")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("line %q is not KEY=VALUE", line)
			}
			settings[section+"."+k] = v
		}
	}
	for k, want := range map[string]string{
		"Service.ExecStart":       "/usr/local/bin/waterspout serve --config /etc/waterspout/waterspout.json",
		"Service.EnvironmentFile": "/etc/waterspout/env",
		"Service.DynamicUser":     "yes",
		"Service.NoNewPrivileges": "yes",
		"Service.KillSignal":      "SIGTERM",
		"Service.Restart":         "on-failure",
		"Install.WantedBy":        "multi-user.target",
	} {
		if settings[k] != want {
			t.Errorf("%s = %q, want %q", k, settings[k], want)
		}
	}
	if _, ok := settings["Service.User"]; ok {
		t.Error("User= beside DynamicUser=yes")
	}
}
