package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/server/auth"
	"github.com/waterspout/waterspout/server/auth/authtest"
)

func TestTokensConfigValidate(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	writeFile(t, secretFile, string(testSecret)+"\r\n")
	pubFile := filepath.Join(dir, "pub.pem")
	writeFile(t, pubFile, string(authtest.PublicPEM(t, &authtest.RSAKey().PublicKey)))
	tests := []struct {
		name   string
		tokens TokensConfig
		err    string
	}{
		{"none", TokensConfig{}, ""},
		{"secret", TokensConfig{Keys: []TokenKey{{Secret: string(testSecret)}}}, ""},
		{"secret file, trailing newline ignored", TokensConfig{HMACSecretFile: secretFile}, ""},
		{"secret from the environment", TokensConfig{HMACSecret: string(testSecret)}, ""},
		{"public key file with id and alg", TokensConfig{Keys: []TokenKey{{ID: "r1", Alg: "RS256", PublicKeyFile: pubFile}}}, ""},
		{"every kind at once", TokensConfig{Keys: []TokenKey{{ID: "a", SecretFile: secretFile}, {ID: "b", PublicKeyFile: pubFile}},
			HMACSecret: string(otherSecret), Issuer: "i", Audience: "a", Leeway: time.Minute}, ""},
		{"weak secret", TokensConfig{HMACSecret: "short"}, "shorter than 32 bytes"},
		{"public key as a secret", TokensConfig{Keys: []TokenKey{{SecretFile: pubFile}}}, "PEM"},
		{"secret as a public key", TokensConfig{Keys: []TokenKey{{PublicKeyFile: secretFile}}}, "no PEM block"},
		{"alg that does not fit", TokensConfig{Keys: []TokenKey{{Alg: "RS256", Secret: string(testSecret)}}}, "does not fit"},
		{"two materials", TokensConfig{Keys: []TokenKey{{Secret: string(testSecret), SecretFile: secretFile}}}, "exactly one"},
		{"no material", TokensConfig{Keys: []TokenKey{{ID: "x"}}}, "exactly one"},
		{"missing secret file", TokensConfig{HMACSecretFile: filepath.Join(dir, "none")}, "secret file"},
		{"missing key file", TokensConfig{Keys: []TokenKey{{PublicKeyFile: filepath.Join(dir, "none")}}}, "public key file"},
		{"same id twice", TokensConfig{Keys: []TokenKey{{ID: "a", Secret: string(testSecret)}, {ID: "a", Secret: string(otherSecret)}}}, "used twice"},
		{"negative leeway", TokensConfig{HMACSecret: string(testSecret), Leeway: -time.Second}, "leeway"},
		{"huge leeway", TokensConfig{HMACSecret: string(testSecret), Leeway: time.Hour}, "leeway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Tokens: tt.tokens}
			checkValidate(t, c.Validate(), tt.err)
		})
	}
}

func TestRateLimitsValidate(t *testing.T) {
	var c Config
	if err := c.Validate(); err != nil || c.RateLimits != defaultRateLimits() {
		t.Fatalf("defaults: %+v %v", c.RateLimits, err)
	}
	c = Config{RateLimits: RateLimits{ConnectionsPerIP: NoLimit, ConnectsPerSecond: NoLimit, PublishesPerSecond: NoLimit, CommandsPerSecond: NoLimit}}
	if err := c.Validate(); err != nil {
		t.Fatalf("every limit off: %v", err)
	}
	if c.RateLimits.commandRate() != (RateLimits{}).commandRate() {
		t.Errorf("commands off: %+v", c.RateLimits.commandRate())
	}
	for _, rl := range []RateLimits{{ConnectionsPerIP: -2}, {ConnectBurst: NoLimit}, {PublishBurst: -5}, {CommandsPerSecond: -3}} {
		c := Config{RateLimits: rl}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "rate limit") {
			t.Errorf("%+v: %v", rl, err)
		}
	}
}

func TestTokensConfigFile(t *testing.T) {
	var c Config
	err := json.Unmarshal([]byte(`{"tokens":{"keys":[{"id":"k1","alg":"HS256","secretFile":"/s"},{"publicKeyFile":"/p.pem"}],
		"issuer":"app","audience":"push","leeway":"30s"},"rateLimits":{"connectsPerSecond":5,"commandsPerSecond":-1}}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	want(t, c.Tokens, TokensConfig{Keys: []TokenKey{{ID: "k1", Alg: "HS256", SecretFile: "/s"}, {PublicKeyFile: "/p.pem"}},
		Issuer: "app", Audience: "push", Leeway: 30 * time.Second})
	want(t, c.RateLimits, RateLimits{ConnectsPerSecond: 5, CommandsPerSecond: NoLimit})

	for _, bad := range []string{`{"tokens":{"leeway":30}}`, `{"tokens":{"hmacSecret":"x"}}`, `{"rateLimits":{"perIP":1}}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	t.Run("the environment's secret is never written", func(t *testing.T) {
		in := Defaults()
		in.Tokens.HMACSecret = "env-secret-0123456789-0123456789-abc"
		in.Tokens.Leeway = 7 * time.Second
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), in.Tokens.HMACSecret) || !strings.Contains(string(b), `"leeway":"7s"`) {
			t.Errorf("%s", b)
		}
		var out Config
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		in.Tokens.HMACSecret = ""
		want(t, out, in)
	})
}

func TestMintConfig(t *testing.T) {
	c := Config{Tokens: TokensConfig{Keys: []TokenKey{{PublicKeyFile: "unused.pem"}}}}
	if _, err := c.MintConfig(); err == nil {
		t.Errorf("a public key file that cannot be read")
	}
	pubFile := filepath.Join(t.TempDir(), "pub.pem")
	writeFile(t, pubFile, string(authtest.PublicPEM(t, &authtest.RSAKey().PublicKey)))
	c = Config{Tokens: TokensConfig{Keys: []TokenKey{{PublicKeyFile: pubFile}}}}
	if _, err := c.MintConfig(); !errors.Is(err, ErrNoSigningSecret) {
		t.Errorf("public keys only: %v", err)
	}
	c = Config{Tokens: TokensConfig{Keys: []TokenKey{{PublicKeyFile: pubFile}, {ID: "k2", Secret: string(testSecret)}},
		HMACSecret: string(otherSecret), Issuer: "app", Audience: "push"}}
	mc, err := c.MintConfig()
	if err != nil || string(mc.Key) != string(testSecret) || mc.KeyID != "k2" || mc.Issuer != "app" || len(mc.Audience) != 1 {
		t.Fatalf("%v %v", mc, err)
	}
}

func TestAPIWithOnlyTokenKeys(t *testing.T) {
	// Token keys without API keys: the API is not open, publisher tokens
	// are its credentials, and the server may listen beyond loopback.
	c := Config{Addr: "0.0.0.0:0", Tokens: TokensConfig{HMACSecret: string(testSecret)}}
	if err := c.Validate(); err != nil {
		t.Fatalf("beyond loopback with token keys: %v", err)
	}
	ts := newTestServer(t, func(c *Config) { c.Tokens.HMACSecret = string(testSecret) })
	body := `{"channel":"news","data":1}`
	a := postJSON(t, ts.URL+"/api/publish", body)
	if a.status != http.StatusUnauthorized || !strings.Contains(a.apiErr(t).Reason, "publisher token") {
		t.Fatalf("no credentials: %d %s", a.status, a.body)
	}
	pub, err := auth.Mint(auth.MintConfig{Sub: "b", Kind: auth.KindPublisher, Publish: []string{"*"}, TTL: time.Minute, Key: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if a := postJSON(t, ts.URL+"/api/publish", body, "Authorization", "Bearer "+pub); a.status != 200 {
		t.Fatalf("publisher token: %d %s", a.status, a.body)
	}
	if a := postJSON(t, ts.URL+"/api/publish", body, "Authorization", "Bearer some-key"); a.status != 401 {
		t.Fatalf("an API key where there are none: %d %s", a.status, a.body)
	}
}
