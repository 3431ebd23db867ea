package bench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Scenario names, in the order Run runs them.
const (
	ScenarioFloor      = "floor"       // S0: the machine alone, no server
	ScenarioIdle       = "idle"        // S1
	ScenarioFanout     = "fanout"      // S2
	ScenarioChannels   = "channels"    // S3
	ScenarioPublish    = "publish"     // S4
	ScenarioFanoutSSE  = "fanout-sse"  // S5
	ScenarioFanoutPoll = "fanout-poll" // S6
	ScenarioReconnect  = "reconnect"   // S7
	ScenarioSlow       = "slow"        // S8
	ScenarioNAT        = "nat"         // S9
	ScenarioStalled    = "stalled"     // S10
)

// Scenarios lists every scenario name in run order.
var Scenarios = []string{
	ScenarioFloor, ScenarioIdle, ScenarioFanout, ScenarioChannels, ScenarioPublish,
	ScenarioFanoutSSE, ScenarioFanoutPoll, ScenarioReconnect, ScenarioSlow, ScenarioNAT, ScenarioStalled,
}

// Config is one bench run. Zero fields take the scenario's documented
// size, or the smoke size with Smoke.
type Config struct {
	// Target is the server under test (normally WaterSpout); each of Peers
	// (Nchan, Centrifugo; at most one of each kind) runs the same
	// scenarios in the same run where it supports them.
	Target Target
	Peers  []*Target
	// Scenarios to run, in Scenarios order; empty runs all.
	Scenarios []string
	// Transports the idle scenario measures; empty: ws, sse, poll.
	Transports []string
	// Smoke shrinks every scenario to a few seconds with a handful of
	// clients: a correctness check, not a measurement.
	Smoke bool
	// Conns overrides the number of subscribers of every scenario (for S3,
	// the number of channels, each with 10 subscribers).
	Conns int
	// Rates are the steps of the fan-out scenarios, in deliveries per
	// second.
	Rates []int
	// Step is how long each rate is held.
	Step time.Duration
	// Settle is the pause between connecting and reading memory in S1.
	Settle time.Duration
	// Publishers is the number of concurrent HTTP publishers (S3, S4).
	Publishers int
	// Batch is how many publications each request of S4's second run
	// carries (POST /api/batch, WaterSpout only), beside the first run of
	// one publication per request: 0 means DefaultBatch, NoBatch skips
	// the second run.
	Batch int
	// SourceAddrs is how many loopback source addresses (127.0.0.2, …)
	// client sockets are spread over; 0 uses the kernel's choice.
	SourceAddrs int
	// DialConcurrency bounds connections being opened at once (not in the
	// reconnect storm, where every client reconnects at once).
	DialConcurrency int
	// Rounds runs each scenario this many times against each server,
	// alternating which server goes first; the ratios to the peer are then
	// the median of the per-round ratios. 0 means 1. Rounds share the
	// servers, so only the first round's S1 memory starts from a fresh
	// process: use rounds for the fan-out and publish scenarios.
	Rounds int
	// Progress receives one line per phase; nil discards.
	Progress io.Writer
}

// DefaultBatch is Config.Batch's default: publications per POST /api/batch.
const DefaultBatch = 100

// NoBatch, as Config.Batch, skips S4's batch run.
const NoBatch = -1

// maxBatch is the most publications the server takes in one batch.
const maxBatch = 1000

// sizes are a scenario's parameters after defaults.
type sizes struct {
	idleConns, fanoutSubs, channels, perChannel, publishers, reconnectClients int
	slowSubs, slowPad, slowRate                                               int
	natClients                                                                int
	natStep                                                                   time.Duration
	stalledSubs                                                               int
	rates, channelRates                                                       []int
	step, slowStep, stalledStep, settle, drain                                time.Duration
}

func (c *Config) sizes() sizes {
	s := sizes{
		idleConns: 10000, fanoutSubs: 5000, channels: 1000, perChannel: 10, publishers: 16,
		reconnectClients: 10000, slowSubs: 1000, slowPad: 4096, slowRate: 20000,
		rates: []int{1000, 5000, 10000, 20000, 50000}, channelRates: []int{1000, 5000, 10000, 20000},
		step: 10 * time.Second, slowStep: 40 * time.Second, settle: 5 * time.Second, drain: 15 * time.Second,
		natClients: 1000, natStep: 30 * time.Second,
		stalledSubs: 3000, stalledStep: 60 * time.Second,
	}
	if c.Smoke {
		s = sizes{
			idleConns: 20, fanoutSubs: 20, channels: 10, perChannel: 2, publishers: 4,
			reconnectClients: 20, slowSubs: 100, slowPad: 256, slowRate: 2000,
			rates: []int{200, 1000}, channelRates: []int{200, 1000},
			step: time.Second, slowStep: time.Second, settle: 200 * time.Millisecond, drain: 10 * time.Second,
			natClients: 20, natStep: 2 * time.Second,
			stalledSubs: 20, stalledStep: 2 * time.Second,
		}
	}
	if c.Conns > 0 {
		s.idleConns, s.fanoutSubs, s.channels, s.reconnectClients, s.slowSubs = c.Conns, c.Conns, c.Conns, c.Conns, c.Conns
		s.natClients = c.Conns
		s.stalledSubs = c.Conns
	}
	if len(c.Rates) > 0 {
		s.rates, s.channelRates = c.Rates, c.Rates
	}
	if c.Step > 0 {
		s.step = c.Step
		if !c.Smoke {
			s.slowStep, s.natStep, s.stalledStep = 4*c.Step, 3*c.Step, 6*c.Step
		}
	}
	if c.Settle > 0 {
		s.settle = c.Settle
	}
	if c.Publishers > 0 {
		s.publishers = c.Publishers
	}
	return s
}

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	if err := c.Target.validate(); err != nil {
		return err
	}
	kinds := []string{c.Target.Kind}
	for _, p := range c.Peers {
		if err := p.validate(); err != nil {
			return err
		}
		// The report tells servers apart by kind.
		if slices.Contains(kinds, p.Kind) {
			return fmt.Errorf("%s is named twice among the servers", p.Kind)
		}
		kinds = append(kinds, p.Kind)
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = slices.Clone(Scenarios)
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return fmt.Errorf("unknown scenario %q (want one of %v)", s, Scenarios)
		}
	}
	// Run in the documented order, each once.
	var ordered []string
	for _, s := range Scenarios {
		if slices.Contains(c.Scenarios, s) {
			ordered = append(ordered, s)
		}
	}
	c.Scenarios = ordered
	if len(c.Transports) == 0 {
		c.Transports = []string{TransportWS, TransportSSE, TransportPoll}
	}
	for _, t := range c.Transports {
		if t != TransportWS && t != TransportSSE && t != TransportPoll {
			return fmt.Errorf("unknown transport %q (want ws, sse or poll)", t)
		}
	}
	for _, r := range c.Rates {
		if r <= 0 {
			return errors.New("rates must be positive")
		}
	}
	if c.Rounds == 0 {
		c.Rounds = 1
	}
	switch {
	case c.Batch == 0:
		c.Batch = DefaultBatch
	case c.Batch == NoBatch:
	case c.Batch < 0 || c.Batch > maxBatch:
		return fmt.Errorf("batch %d: want 1..%d publications per request, or %d for no batch run", c.Batch, maxBatch, NoBatch)
	}
	if c.Conns < 0 || c.Rounds < 0 || c.Publishers < 0 || c.SourceAddrs < 0 || c.DialConcurrency < 0 || c.Step < 0 || c.Settle < 0 {
		return errors.New("sizes and durations must not be negative")
	}
	if c.SourceAddrs > 250 {
		return errors.New("at most 250 source addresses (127.0.0.2 to 127.0.0.251)")
	}
	if c.DialConcurrency == 0 {
		c.DialConcurrency = 200
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}
