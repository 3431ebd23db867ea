package main

import (
	"context"
	"errors"
	"flag"
	"io/fs"
	"runtime/debug"

	clientjs "github.com/waterspout/waterspout/client-js"
	"github.com/waterspout/waterspout/internal/buildinfo"
	"github.com/waterspout/waterspout/server"
)

// runServe runs the server until ctx ends (SIGINT, SIGTERM), then shuts it
// down gracefully.
func runServe(ctx context.Context, e *env, args []string) error {
	cfg, err := server.LoadConfig(args, e.getenv)
	if errors.Is(err, server.ErrHelp) {
		if err := server.WriteServeUsage(e.stdout); err != nil {
			return err
		}
		return flag.ErrHelp
	}
	if err != nil {
		return usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	log, err := server.NewLogger(e.stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return usageError{err}
	}
	cfg.Logger = log
	cfg.ClientFS = clientFS()
	bi, _ := debug.ReadBuildInfo()
	cfg.Version = buildinfo.String(version, commit, bi) // shown on /admin
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// clientFS returns the built client bundles served under /client/.
func clientFS() fs.FS {
	sub, err := fs.Sub(clientjs.Dist, "dist")
	if err != nil {
		panic(err) // fs.Sub fails only on an invalid path, and "dist" is valid
	}
	return sub
}
