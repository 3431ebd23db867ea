package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func TestClientFiles(t *testing.T) {
	files := fstest.MapFS{
		"waterspout.js":        {Data: []byte("var WaterSpout={};")},
		"waterspout.mjs":       {Data: []byte("export const x=1;")},
		"waterspout.legacy.js": {Data: []byte("var WaterSpout={legacy:1};")},
		"sub/ignored.js":       {Data: []byte("no")},
		"waterspout.d.ts":      {Data: []byte("declare const x: number;")},
	}
	ts := newTestServer(t, func(c *Config) { c.ClientFS = files })
	for _, name := range []string{"waterspout.js", "waterspout.mjs", "waterspout.legacy.js"} {
		t.Run(name, func(t *testing.T) {
			a := do(t, http.MethodGet, ts.URL+"/client/"+name, "")
			if a.status != 200 || !bytes.Equal(a.body, files[name].Data) {
				t.Fatalf("%d %q", a.status, a.body)
			}
			for h, v := range map[string]string{
				"Content-Type":                "text/javascript; charset=utf-8",
				"Cache-Control":               "public, max-age=300",
				"X-Content-Type-Options":      "nosniff",
				"Access-Control-Allow-Origin": "*",
			} {
				if got := a.header.Get(h); got != v {
					t.Errorf("%s: %q, want %q", h, got, v)
				}
			}
			etag := a.header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			if again := do(t, http.MethodGet, ts.URL+"/client/"+name, "", "If-None-Match", etag); again.status != http.StatusNotModified {
				t.Errorf("revalidation: %d", again.status)
			}
		})
	}
	for _, path := range []string{"/client/nope.js", "/client/sub/ignored.js", "/client/waterspout.d.ts", "/client/../server.go"} {
		if a := do(t, http.MethodGet, ts.URL+path, ""); a.status != 404 {
			t.Errorf("%s: %d", path, a.status)
		}
	}
}

func TestClientFilesMissing(t *testing.T) {
	ts := newTestServer(t, nil)
	a := do(t, http.MethodGet, ts.URL+"/client/waterspout.js", "")
	if a.status != 404 || !strings.Contains(a.apiErr(t).Reason, "not built") {
		t.Errorf("%d %s", a.status, a.body)
	}
}

func TestDemoPage(t *testing.T) {
	ts := newTestServer(t, nil)
	a := do(t, http.MethodGet, ts.URL+"/", "")
	if a.status != 200 || a.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %s", a.status, a.header.Get("Content-Type"))
	}
	page := string(a.body)
	for _, id := range []string{"channel", "connect-form", "connect", "disconnect", "transports", "state", "transport",
		"subscribed", "messages", "publish-form", "publish-channel", "publish-data", "publish-key", "api-key",
		"publish-result", "curl", "error"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("page lacks #%s", id)
		}
	}
	if !strings.Contains(page, `<script src="/client/waterspout.js"></script>`) {
		t.Errorf("page does not load the client bundle")
	}
	// No external resources: every src and href is same-origin.
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if (!strings.HasPrefix(m[1], "/") || strings.HasPrefix(m[1], "//")) && !strings.HasPrefix(m[1], "data:") {
			t.Errorf("external resource %q", m[1])
		}
	}
	// The CSP must allow exactly the inline script, or the page is dead.
	csp := a.header.Get("Content-Security-Policy")
	script := page[strings.Index(page, "<script>")+len("<script>"):]
	script = script[:strings.Index(script, "</script>")]
	sum := sha256.Sum256([]byte(script))
	if hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, hash) {
		t.Errorf("CSP %q does not allow the inline script %s", csp, hash)
	}
	for _, directive := range strings.Split(csp, ";") {
		if strings.HasPrefix(strings.TrimSpace(directive), "script-src") && strings.Contains(directive, "unsafe-inline") {
			t.Errorf("CSP allows any inline script: %q", csp)
		}
	}
	if a := do(t, http.MethodHead, ts.URL+"/", ""); a.status != 200 {
		t.Errorf("HEAD /: %d", a.status)
	}
}
