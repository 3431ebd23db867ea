package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/apiclient"
	"github.com/waterspout/waterspout/server"
)

const exampleConfig = "../../waterspout.example.json"

// TestExampleConfig loads waterspout.example.json as `serve --config` does
// (unknown keys are an error there, so a renamed setting fails it), checks
// its values arrived, then serves with it and publishes.
func TestExampleConfig(t *testing.T) {
	cfg, err := server.LoadConfig([]string{"--config", exampleConfig}, func(string) string { return "" })
	if err != nil {
		t.Fatalf("load %s: %v", exampleConfig, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate %s: %v", exampleConfig, err)
	}
	if len(cfg.Namespaces) != 3 || cfg.Namespaces[1].Name != "orders" || cfg.Namespaces[2].HistoryTTL != time.Hour ||
		cfg.LogFormat != "json" || cfg.Limits.MaxMessageBytes != 65536 || cfg.RateLimits.PublishBurst != 5000 ||
		cfg.Tokens.Audience != "waterspout" || cfg.Addr != "127.0.0.1:8080" || len(cfg.AllowedOrigins) != 2 {
		t.Errorf("loaded %+v", cfg)
	}

	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", exampleConfig, "--addr", "127.0.0.1:0"}, &env{
			stdin: strings.NewReader(""), stdout: &syncBuffer{}, stderr: logs,
			getenv: func(string) string { return "" },
		})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d\n%s", code, logs)
		}
	}()
	var addr string
	waitFor(t, "the listening log line", func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr = rec.Addr
				return true
			}
		}
		return false
	}, logs.String)

	resp, err := http.Get("http://" + addr + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/livez: %s", resp.Status)
	}
	c, err := apiclient.New(apiclient.Config{URL: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.Publish(ctx, apiclient.PublishRequest{Channel: "chat:lobby", Data: "hi"}); err != nil || res.Offset != 1 {
		t.Fatalf("publish with the example config: %+v, %v", res, err)
	}
}

// TestExampleConfigHoldsEverySetting holds waterspout.example.json to what
// README.md and docs/OPERATIONS.md say of it: every setting of a single
// node on the memory broker, so a new setting cannot be left out of it.
// Left out on purpose: the other brokers' settings, and credentials, which
// belong in the environment.
func TestExampleConfigHoldsEverySetting(t *testing.T) {
	notForOneNode := map[string]bool{
		"apiKeys": true, "redisSentinels": true, "redisMaster": true, "redisCluster": true,
		"redisUsername": true, "redisPassword": true, "redisSentinelPassword": true,
		"redisAllowEviction": true, "tokens.keys": true, "tokens.hmacSecretFile": true, "admin.secretFile": true,
	}
	b, err := json.Marshal(server.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, k := range jsonKeys(t, example, "") {
		have[k] = true
	}
	for _, k := range jsonKeys(t, b, "") {
		if !have[k] && !notForOneNode[k] {
			t.Errorf("%s lacks the setting %q", exampleConfig, k)
		}
	}
}

// jsonKeys lists the keys of the JSON object b, nested objects' keys by
// their dotted path.
func jsonKeys(t *testing.T, b []byte, prefix string) []string {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k, v := range obj {
		if len(v) > 0 && v[0] == '{' {
			out = append(out, jsonKeys(t, v, prefix+k+".")...)
			continue
		}
		out = append(out, prefix+k)
	}
	return out
}
