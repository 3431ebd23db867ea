package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/server"
	"github.com/waterspout/waterspout/server/auth"
)

const tokenSecret = "token-command-secret-0123456789-abcdef"

func verifier(t *testing.T, cfg auth.VerifierConfig) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// mintCLI runs `waterspout token` and returns the token it printed.
func mintCLI(t *testing.T, environ map[string]string, args ...string) string {
	t.Helper()
	r := invoke(t, context.Background(), environ, "", append([]string{"token"}, args...)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	tok, ok := strings.CutSuffix(r.stdout, "\n")
	if !ok || strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("output %q is not one token and a newline", r.stdout)
	}
	return tok
}

func TestTokenCommand(t *testing.T) {
	env := map[string]string{"WATERSPOUT_TOKEN_HMAC_SECRET": tokenSecret}
	v := verifier(t, auth.VerifierConfig{Keys: []auth.Key{{Secret: []byte(tokenSecret)}}})

	t.Run("connection token", func(t *testing.T) {
		before := time.Now().Truncate(time.Second)
		tok := mintCLI(t, env, "--sub", "17", "--channels", "orders:*, news", "--publish", "chat:17", "--ttl", "10m")
		c, err := v.VerifyConnection(tok)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != "17" || !reflect.DeepEqual(c.Channels, []string{"orders:*", "news"}) ||
			!reflect.DeepEqual(c.Publish, []string{"chat:17"}) || c.Kind != auth.KindConnection {
			t.Errorf("claims %+v", c)
		}
		if ttl := c.ExpiresAt.Sub(c.IssuedAt); ttl != 10*time.Minute || c.IssuedAt.Before(before) {
			t.Errorf("iat %v exp %v", c.IssuedAt, c.ExpiresAt)
		}
		if !c.CanSubscribe("user#17") || !c.CanSubscribe("orders:42") || c.CanSubscribe("orders") {
			t.Errorf("grants of %+v", c)
		}
	})
	t.Run("default ttl is an hour", func(t *testing.T) {
		c, err := v.Verify(mintCLI(t, env, "--sub", "17"))
		if err != nil || c.ExpiresAt.Sub(c.IssuedAt) != time.Hour {
			t.Fatalf("%+v %v", c, err)
		}
	})
	t.Run("publisher token", func(t *testing.T) {
		c, err := v.VerifyPublisher(mintCLI(t, env, "--sub", "billing", "--kind", "publisher", "--publish", "orders:*"))
		if err != nil || !auth.PublisherAllowed(c, "orders:1") || auth.PublisherAllowed(c, "news") {
			t.Fatalf("%+v %v", c, err)
		}
		if _, err := v.VerifyConnection(mintCLI(t, env, "--sub", "billing", "--kind", "publisher")); err == nil {
			t.Error("a publisher token opens connections")
		}
	})
	t.Run("ES256 private key file", func(t *testing.T) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		file := filepath.Join(t.TempDir(), "ec.pem")
		os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
		pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		ev := verifier(t, auth.VerifierConfig{Keys: []auth.Key{{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})}}})
		if _, err := ev.VerifyConnection(mintCLI(t, nil, "--sub", "17", "--key-file", file)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("usage errors", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			env    map[string]string
			args   []string
			stderr string
		}{
			{"no sub", env, nil, "--sub is required"},
			{"no key", nil, []string{"--sub", "17"}, "no HMAC secret"},
			{"weak secret", map[string]string{"WATERSPOUT_TOKEN_HMAC_SECRET": "short"}, []string{"--sub", "17"}, "shorter than 32 bytes"},
			{"bad kind", env, []string{"--sub", "17", "--kind", "admin"}, "--kind"},
			{"bad pattern", env, []string{"--sub", "17", "--channels", "a b"}, "channels[0]"},
			{"zero ttl", env, []string{"--sub", "17", "--ttl", "0s"}, "--ttl"},
			{"year-long ttl", env, []string{"--sub", "17", "--ttl", "8760h"}, "--ttl"},
			{"ttl not a duration", env, []string{"--sub", "17", "--ttl", "forever"}, `"forever" is not a duration: write a number with a unit, such as 90s`},
			{"missing key file", env, []string{"--sub", "17", "--key-file", "/nonexistent"}, "key file"},
			{"positional", env, []string{"--sub", "17", "extra"}, "unexpected argument"},
		} {
			r := invoke(t, context.Background(), c.env, "", append([]string{"token"}, c.args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, c.stderr) || r.stdout != "" {
				t.Errorf("%s: exit %d, stdout %q, stderr %q (want %q)", c.name, r.code, r.stdout, r.stderr, c.stderr)
			}
		}
	})
	t.Run("help", func(t *testing.T) {
		r := invoke(t, context.Background(), nil, "", "token", "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "--channels") || !strings.Contains(r.stdout, "--key-file") {
			t.Fatalf("exit %d: %s", r.code, r.stdout)
		}
	})
}

// TestTokenCommandServerAccepts mints with the server's own configuration
// (a config file with a key id, an issuer and an audience) and connects to
// a server built from the same configuration.
func TestTokenCommandServerAccepts(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte(tokenSecret+"\n"), 0o600)
	cfgFile := filepath.Join(dir, "waterspout.json")
	os.WriteFile(cfgFile, []byte(`{"tokens":{"keys":[{"id":"k1","secretFile":"`+secretFile+`"}],"issuer":"app","audience":"push"},
		"namespaces":[{"name":"orders","historySize":10,"historyTTL":"1m"}]}`), 0o600)
	env := map[string]string{"WATERSPOUT_CONFIG": cfgFile}

	cfg, err := server.LoadConfig([]string{"--addr", "127.0.0.1:0"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := wiretest.Serve(t, s)
	// sse opens a stream with tok and returns its status; an accepted one
	// must start with hello.
	sse := func(tok string) int {
		q := url.Values{"channel": {"orders:17", "user#17"}, "token": {tok}}
		st, err := wiretest.OpenSSE(http.DefaultClient, ts.URL+"/connect/sse?"+q.Encode(), nil)
		var refused wiretest.HTTPError
		if errors.As(err, &refused) {
			return refused.Status
		}
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if f, err := st.Next(wiretest.WaitLimit); err != nil || f.Type != "hello" {
			t.Fatalf("stream starts with %+v, %v", f, err)
		}
		return http.StatusOK
	}
	if code := sse(mintCLI(t, env, "--sub", "17", "--channels", "orders:17")); code != 200 {
		t.Errorf("a token minted from the server's configuration: %d", code)
	}
	if code := sse(mintCLI(t, env, "--sub", "17", "--channels", "orders:17", "--issuer", "someone-else")); code != 401 {
		t.Errorf("another issuer: %d", code)
	}
	if code := sse(mintCLI(t, env, "--sub", "17", "--channels", "orders:17", "--kid", "k2")); code != 401 {
		t.Errorf("an unknown key id: %d", code)
	}
}
