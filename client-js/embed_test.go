package clientjs

import (
	"io/fs"
	"strings"
	"testing"
)

func TestDistHoldsTheBundles(t *testing.T) {
	for _, name := range []string{"waterspout.js", "waterspout.mjs", "waterspout.legacy.js", "waterspout.d.ts"} {
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
