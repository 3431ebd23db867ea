//go:build pprof

package main

import (
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

// A binary built with -tags pprof serves the runtime profiles on the
// loopback address in WATERSPOUT_PPROF_ADDR (for example 127.0.0.1:6060).
// It is how the numbers in docs/BENCHMARKS.md were explained; release builds
// leave it out, so no flag can expose it by mistake.
func init() {
	addr := os.Getenv("WATERSPOUT_PPROF_ADDR")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		panic("WATERSPOUT_PPROF_ADDR must be a loopback host:port, got " + addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic(err)
	}
	go func() { _ = http.Serve(ln, nil) }()
}
