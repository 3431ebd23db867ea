package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/waterspout/waterspout/internal/bench"
)

const benchUsage = `Usage: waterspout bench [SCENARIO...] [flags]

Drives a running server over WebSocket, SSE and long-polling, and its peers
(Nchan, Centrifugo) where they support the scenario, and prints Markdown
tables (progress goes to standard error). Scenarios, all by default:
  floor        S0: S2's connections, frames and schedule with no server: raw write(2)
               and epoll/read(2) on loopback, what this machine itself costs
  idle         S1: idle connections per transport; KB per connection from the server's memory
  fanout       S2: 1 channel × 5,000 WebSocket subscribers, publish rate stepped up
  channels     S3: 1,000 channels × 10 WebSocket subscribers, rate stepped up
  publish      S4: POST /api/publish throughput over keep-alive HTTP, then (WaterSpout only)
               the same through POST /api/batch, --batch publications a request
  fanout-sse   S5: S2 over SSE
  fanout-poll  S6: S2 over long-polling
  reconnect    S7: 10,000 WebSocket clients drop and resume from their positions at once
  slow         S8: 1,000 subscribers, 1 % stop reading; the others' latency and the server's memory
  nat          S9: 1,000 long-poll subscribers from one address, 5 publications/s; run it
               against a server at its default limits: every message, no 429
  stalled      S10: 3,000 SSE subscribers that never read (10 pubs/s of ~250 B, 60 s) beside 10
               that do; server RSS and host TCP memory per stalled reader, and when each is dropped
Memory and CPU are read from /proc/PID of the server: pass --server-pid.
Latency runs from each message's intended send time (open-loop schedule).

Flags:
  --server URL          the WaterSpout server (env WATERSPOUT_SERVER, default ` + defaultServer + `)
  --api-key KEY         API key (env WATERSPOUT_API_KEY, else the first of WATERSPOUT_API_KEYS)
  --server-pid PID      the server's process, for memory and CPU
  --peer LIST           also run every scenario each peer supports against it: nchan,
                        centrifugo, or both (nchan,centrifugo): one table row per server,
                        one ratio table per peer
  --nchan-url URL       Nchan (default http://127.0.0.1:8081)
  --nchan-pid PID       Nchan's process (nginx: the master; workers are added)
  --centrifugo-url URL  Centrifugo (default http://127.0.0.1:8082)
  --centrifugo-pid PID  Centrifugo's process
  --centrifugo-api-key KEY  Centrifugo's HTTP API key (default: --api-key)
  --peer-url URL        with one peer: the same as its --nchan-url or --centrifugo-url
  --peer-pid PID        with one peer: the same as its --nchan-pid or --centrifugo-pid
  --smoke               a few clients and seconds per scenario: a correctness check
  --conns N             subscribers of every scenario (S3: channels), instead of the defaults
  --rates LIST          fan-out steps in deliveries/s (default 1000,5000,10000,20000,50000)
  --step D              how long each rate is held (default 10s)
  --rounds N            run each scenario N times per server, alternating which goes
                        first; ratios are the median of the per-round ratios (default 1;
                        rounds share the servers, so use it for fan-out and publish)
  --settle D            S1: pause before reading memory (default 5s)
  --publishers N        concurrent HTTP publishers (default 16)
  --batch N             S4: publications per POST /api/batch in its batch step (default 100;
                        0: no batch step)
  --transports LIST     S1: transports to measure (default ws,sse,poll)
  --source-addrs N      spread client sockets over 127.0.0.2… (default 8; 0: one address)
  --dial-concurrency N  connections opened at once (default 200)
  --json FILE           also write the results as JSON ("-": standard output, no tables)
  -h, --help            show this help
`

func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("bench")
	serverURL := e.serverFlag(fs)
	apiKey := e.apiKeyFlag(fs)
	serverPID := fs.Int("server-pid", 0, "")
	peer := fs.String("peer", "", "")
	peerURL := fs.String("peer-url", "", "")
	peerPID := fs.Int("peer-pid", 0, "")
	nchanURL := fs.String("nchan-url", "http://127.0.0.1:8081", "")
	nchanPID := fs.Int("nchan-pid", 0, "")
	centrifugoURL := fs.String("centrifugo-url", "http://127.0.0.1:8082", "")
	centrifugoPID := fs.Int("centrifugo-pid", 0, "")
	centrifugoKey := fs.String("centrifugo-api-key", "", "")
	smoke := fs.Bool("smoke", false, "")
	conns := fs.Int("conns", 0, "")
	rates := fs.String("rates", "", "")
	step := durationFlag(fs, "step", 0)
	rounds := fs.Int("rounds", 0, "")
	settle := durationFlag(fs, "settle", 0)
	publishers := fs.Int("publishers", 0, "")
	batch := fs.Int("batch", bench.DefaultBatch, "")
	transports := fs.String("transports", "", "")
	sourceAddrs := fs.Int("source-addrs", 8, "")
	dialConc := fs.Int("dial-concurrency", 0, "")
	jsonOut := fs.String("json", "", "")
	pos, err := e.parseArgs(fs, args, benchUsage)
	if err != nil {
		return err
	}
	cfg := bench.Config{
		Target:    bench.Target{Kind: bench.KindWaterSpout, URL: *serverURL, APIKey: *apiKey, PID: *serverPID},
		Scenarios: pos, Smoke: *smoke, Conns: *conns, Step: *step, Rounds: *rounds, Settle: *settle, Publishers: *publishers,
		SourceAddrs: *sourceAddrs, DialConcurrency: *dialConc, Progress: e.stderr,
	}
	switch {
	case *batch == 0:
		cfg.Batch = bench.NoBatch
	case *batch < 0:
		return usagef("--batch %d: want a number of publications per request, or 0 for none", *batch)
	default:
		cfg.Batch = *batch
	}
	if *transports != "" {
		cfg.Transports = strings.Split(*transports, ",")
	}
	if *rates != "" {
		for r := range strings.SplitSeq(*rates, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(r))
			if err != nil {
				return usagef("--rates: %q is not a number", r)
			}
			cfg.Rates = append(cfg.Rates, n)
		}
	}
	peers := map[string]*bench.Target{
		bench.KindNchan:      {Kind: bench.KindNchan, URL: *nchanURL, PID: *nchanPID},
		bench.KindCentrifugo: {Kind: bench.KindCentrifugo, URL: *centrifugoURL, PID: *centrifugoPID, APIKey: firstNonEmpty(*centrifugoKey, *apiKey)},
	}
	if cfg.Peers, err = peerTargets(*peer, peers); err != nil {
		return err
	}
	// --peer-url and --peer-pid name the one peer's; with two they would be
	// ambiguous.
	var oneOnly []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "peer-url" || f.Name == "peer-pid" {
			oneOnly = append(oneOnly, "--"+f.Name)
		}
	})
	if len(oneOnly) > 0 {
		if len(cfg.Peers) != 1 {
			return usagef("%s needs exactly one --peer; with two, use --nchan-url, --nchan-pid, --centrifugo-url, --centrifugo-pid", strings.Join(oneOnly, " and "))
		}
		if *peerURL != "" {
			cfg.Peers[0].URL = *peerURL
		}
		if *peerPID != 0 {
			cfg.Peers[0].PID = *peerPID
		}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	rep, runErr := bench.Run(ctx, cfg)
	if rep == nil {
		return runErr
	}
	if *jsonOut != "" {
		if err := writeJSON(e, *jsonOut, rep); err != nil {
			return err
		}
	}
	if *jsonOut != "-" {
		if err := bench.WriteTables(e.stdout, rep); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	if probs := rep.Problems(); len(probs) > 0 {
		return fmt.Errorf("%d correctness problems:\n  %s", len(probs), strings.Join(probs, "\n  "))
	}
	return nil
}

// peerTargets returns the peers a --peer list names (comma-separated), in
// its order, each once.
func peerTargets(list string, known map[string]*bench.Target) ([]*bench.Target, error) {
	var out []*bench.Target
	if list == "" {
		return nil, nil
	}
	seen := map[string]bool{}
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		t, ok := known[name]
		if !ok {
			return nil, usagef("--peer %q: the peers are %s and %s", name, bench.KindNchan, bench.KindCentrifugo)
		}
		if seen[name] {
			return nil, usagef("--peer names %s twice", name)
		}
		seen[name] = true
		out = append(out, t)
	}
	return out, nil
}

// writeJSON writes the report to path, or to standard output for "-".
func writeJSON(e *env, path string, rep *bench.Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = e.stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}
