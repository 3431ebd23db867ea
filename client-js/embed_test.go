package clientjs

import (
	"io/fs"
	"strings"
	"testing"
)

func TestDistHoldsTheBundles(t *testing.T) {
	for _, name := range []string{"waterspout.js", "waterspout.mjs", "waterspout.legacy.js", "waterspout.d.ts", "waterspout.d.mts"} {
		b, err := fs.ReadFile(Dist, "dist/"+name)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		if len(b) == 0 {
			t.Fatalf("%s is empty", name)
		}
		if strings.HasSuffix(name, ".js") && !strings.Contains(string(b), "WaterSpout") {
			t.Errorf("%s does not define WaterSpout", name)
		}
	}
}

// TestDistHoldsSockJSClient: the SockJS iframe page loads sockjs-client from
// /client/sockjs.min.js on this server (never a CDN), so the binary embeds it.
func TestDistHoldsSockJSClient(t *testing.T) {
	b, err := fs.ReadFile(Dist, "dist/sockjs.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "/* sockjs-client v") || !strings.Contains(string(b), "MIT license") {
		t.Fatalf("dist/sockjs.min.js is not the sockjs-client bundle with its license banner: %.60q", b)
	}
}
