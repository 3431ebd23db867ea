package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want statFields
		ok   bool
	}{
		{"plain", "123 (nginx) S 1 123 123 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 200", statFields{ppid: 1, utime: 250, stime: 75}, true},
		{"name with spaces and parens", "9 (a) b (c) R 4 9 9 0 -1 0 0 0 0 0 7 8 0 0", statFields{ppid: 4, utime: 7, stime: 8}, true},
		{"short", "9 (x) R 4 9", statFields{}, false},
		{"no name", "garbage", statFields{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.stat))
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseStat = %+v, %v; want %+v, ok %v", got, err, tt.want, tt.ok)
			}
		})
	}
}

// TestProcTree sums a process and its children from a fake /proc.
func TestProcTree(t *testing.T) {
	root := t.TempDir()
	write := func(pid, stat, status, rollup string) {
		dir := filepath.Join(root, pid)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"stat": stat, "status": status, "smaps_rollup": rollup} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("10", "10 (nginx) S 1 0 0 0 0 0 0 0 0 0 100 50 0 0", "VmRSS:\t  1000 kB\n", "Rss: 1000 kB\nPss:    600 kB\n")
	write("11", "11 (nginx) S 10 0 0 0 0 0 0 0 0 0 30 20 0 0", "VmRSS:\t  2000 kB\n", "Pss:    900 kB\n")
	write("12", "12 (other) S 1 0 0 0 0 0 0 0 0 0 999 999 0 0", "VmRSS:\t  5 kB\n", "Pss: 5 kB\n")
	p := &procReader{pid: 10, root: root}
	s, err := p.sample()
	if err != nil {
		t.Fatal(err)
	}
	want := procSample{CPU: 200 * clockTick, Sys: 70 * clockTick, RSSKB: 3000, PSSKB: 1500}
	if s != want {
		t.Errorf("sample = %+v, want %+v", s, want)
	}
	if _, err := (&procReader{pid: 99, root: root}).sample(); err == nil {
		t.Error("sampling a missing process succeeded")
	}
	var zero *procReader
	if s, err := zero.sample(); err != nil || s != (procSample{}) {
		t.Errorf("nil reader: %+v, %v", s, err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{Target: Target{Kind: KindWaterSpout, URL: "http://127.0.0.1:8080"}}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"peer", func(c *Config) { c.Peers = []*Target{{Kind: KindNchan, URL: "http://127.0.0.1:8081"}} }, true},
		{"two peers", func(c *Config) {
			c.Peers = []*Target{{Kind: KindNchan, URL: "http://127.0.0.1:8081"}, {Kind: KindCentrifugo, URL: "http://127.0.0.1:8082"}}
		}, true},
		{"one kind twice", func(c *Config) {
			c.Peers = []*Target{{Kind: KindNchan, URL: "http://127.0.0.1:8081"}, {Kind: KindNchan, URL: "http://127.0.0.1:8082"}}
		}, false},
		{"peer of the target's kind", func(c *Config) { c.Peers = []*Target{{Kind: KindWaterSpout, URL: "http://127.0.0.1:8081"}} }, false},
		{"bad peer url", func(c *Config) { c.Peers = []*Target{{Kind: KindCentrifugo, URL: "ws://x"}} }, false},
		{"unknown kind", func(c *Config) { c.Target.Kind = "mercure" }, false},
		{"bad url", func(c *Config) { c.Target.URL = "ws://x" }, false},
		{"unknown scenario", func(c *Config) { c.Scenarios = []string{"nope"} }, false},
		{"unknown transport", func(c *Config) { c.Transports = []string{"sockjs"} }, false},
		{"zero rate", func(c *Config) { c.Rates = []int{0} }, false},
		{"negative conns", func(c *Config) { c.Conns = -1 }, false},
		{"too many sources", func(c *Config) { c.SourceAddrs = 251 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.mutate(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
	c := good()
	c.Scenarios = []string{ScenarioSlow, ScenarioIdle, ScenarioSlow}
	if err := c.Validate(); err != nil || len(c.Scenarios) != 2 || c.Scenarios[0] != ScenarioIdle {
		t.Errorf("scenarios are not put in run order once each: %v, %v", c.Scenarios, err)
	}
}

// TestProcCPU checks that CPU time comes from the threads' schedstat to the
// nanosecond, and from clock ticks when the threads' sum cannot be trusted.
func TestProcCPU(t *testing.T) {
	const ticks = 30 * clockTick // what /proc/PID/stat says: 300 ms
	tests := []struct {
		name  string
		tasks map[string]string // thread id → schedstat
		want  time.Duration
	}{
		{"threads summed", map[string]string{"1": "200000001 5 6\n", "2": "104000000 7 8\n"}, 304000001},
		{"within a tick below the ticks", map[string]string{"1": "291000000 0 0\n"}, 291000000},
		{"an exited thread's time missing", map[string]string{"1": "150000000 0 0\n"}, ticks},
		{"no task directory", nil, ticks},
		{"malformed", map[string]string{"1": "x 0 0\n"}, ticks},
		{"empty", map[string]string{"1": ""}, ticks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for tid, body := range tt.tasks {
				if err := os.MkdirAll(filepath.Join(dir, "task", tid), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "task", tid, "schedstat"), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := (&procReader{}).cpu(dir, ticks); got != tt.want {
				t.Errorf("cpu = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestProcCPUSelf reads this test process's own CPU time both ways: the
// threads' sum must agree with the ticks to within the rounding.
func TestProcCPUSelf(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) { // spend some CPU
	}
	p := newProcReader(os.Getpid())
	s, err := p.sample()
	if err != nil {
		t.Fatal(err)
	}
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	ticks := time.Duration(st.utime+st.stime) * clockTick
	if s.CPU%clockTick == 0 {
		t.Errorf("CPU %v is whole ticks: the threads' schedstat was not used", s.CPU)
	}
	if s.CPU < ticks-clockTick || s.CPU > ticks+5*clockTick {
		t.Errorf("CPU %v, ticks %v: more than the rounding apart", s.CPU, ticks)
	}
}
