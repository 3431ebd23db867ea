package main

import (
	"context"
	"flag"
	"fmt"
	"runtime/debug"

	"github.com/waterspout/waterspout/internal/buildinfo"
)

// version is set at release time: go build -ldflags "-X main.version=v1.2.3".
// Without it, the module version from the build info is used.
var version = ""

// commit may be set the same way (-X main.commit=$(git rev-parse HEAD)) for
// builds made outside a git checkout, such as the container build, whose
// context leaves .git out; the build info's vcs.revision is used otherwise.
var commit = ""

func runVersion(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(e.stdout)
	fs.Usage = func() { fmt.Fprintln(e.stdout, "Usage: waterspout version\n\nPrints the version of this binary.") }
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	bi, _ := debug.ReadBuildInfo()
	_, err := fmt.Fprintln(e.stdout, buildinfo.String(version, commit, bi))
	return err
}
