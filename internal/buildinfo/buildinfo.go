// Package buildinfo names the running binary: what `waterspout version`
// prints and the admin view shows.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// String is "waterspout VERSION (REVISION, GO VERSION)". v and rev are the
// ones stamped at build time (-ldflags -X), if any: an explicit rev wins
// over the build info's vcs.revision, and without v the module version
// from bi is used, else "devel".
func String(v, rev string, bi *debug.BuildInfo) string {
	modified := false
	if bi != nil {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "-dirty"
	}
	if rev == "" {
		return fmt.Sprintf("waterspout %s (%s)", v, runtime.Version())
	}
	return fmt.Sprintf("waterspout %s (%s, %s)", v, rev, runtime.Version())
}
