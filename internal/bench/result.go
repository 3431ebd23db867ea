package bench

import (
	"os"
	"runtime"
	"strings"
	"time"
)

// Report is everything one run measured; its JSON form goes into
// bench/results/ and docs/BENCHMARKS.md.
type Report struct {
	Started time.Time `json:"started"`
	Machine Machine   `json:"machine"`
	Smoke   bool      `json:"smoke"`
	Results []Result  `json:"results"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpuModel"`
	MemTotalKB  int64  `json:"memTotalKB"`
	Kernel      string `json:"kernel"`
	GoVersion   string `json:"goVersion"`
	LoadAverage string `json:"loadAverage"` // 1, 5, 15 minutes, at the start
	FileLimit   uint64 `json:"fileLimit"`
}

func readMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotalKB = fieldKB(b, "MemTotal:")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	return m
}

// Result is one scenario against one server over one transport.
type Result struct {
	Scenario  string `json:"scenario"`
	Target    string `json:"target"`
	Transport string `json:"transport"`
	Conns     int    `json:"conns"`
	Channels  int    `json:"channels"`
	// Round numbers the repetitions of a run with several rounds, from 1;
	// it is 0 in a run of one round.
	Round int `json:"round,omitempty"`

	Idle      *IdleResult      `json:"idle,omitempty"`
	Steps     []Step           `json:"steps,omitempty"`
	Publish   *PublishResult   `json:"publish,omitempty"`
	Reconnect *ReconnectResult `json:"reconnect,omitempty"`
	Slow      *SlowResult      `json:"slow,omitempty"`
	NAT       *NATResult       `json:"nat,omitempty"`
	Stalled   *StalledResult   `json:"stalled,omitempty"`

	// Errors counts failures (connects, publishes, unexpected disconnects);
	// FirstErrors holds the first few.
	Errors      int      `json:"errors"`
	FirstErrors []string `json:"firstErrors,omitempty"`
}

// IdleResult is S1: the server's memory with Conns idle subscribers.
type IdleResult struct {
	ConnectSeconds float64 `json:"connectSeconds"`
	RSSBeforeKB    int64   `json:"rssBeforeKB"`
	RSSAfterKB     int64   `json:"rssAfterKB"`
	PSSBeforeKB    int64   `json:"pssBeforeKB"`
	PSSAfterKB     int64   `json:"pssAfterKB"`
	// KBPerConn is the PSS growth divided by the connections. For one
	// process PSS and RSS grow alike; for nginx, PSS counts the shared zone
	// once across workers.
	KBPerConn    float64 `json:"kbPerConn"`
	RSSKBPerConn float64 `json:"rssKBPerConn"`
	// Delivered and Expected check that the connections were live: one
	// message published after the measurement, received by each.
	Delivered int64 `json:"delivered"`
	Expected  int64 `json:"expected"`
}

// Step is one publish rate held for a while.
type Step struct {
	TargetRate       int     `json:"targetDeliveriesPerSec"`
	Publications     int64   `json:"publications"`
	Expected         int64   `json:"expected"`
	Delivered        int64   `json:"delivered"`
	Gaps             int64   `json:"gaps"`
	Dups             int64   `json:"dups"`
	PublishErrors    int64   `json:"publishErrors"`
	Seconds          float64 `json:"seconds"`
	DeliveriesPerSec float64 `json:"deliveriesPerSec"`
	// Latency from the intended send time to receipt, milliseconds.
	P50  float64 `json:"p50ms"`
	P99  float64 `json:"p99ms"`
	P999 float64 `json:"p999ms"`
	Max  float64 `json:"maxms"`
	// ServerCPUSeconds is user+system time of the server over the step,
	// drain included; CPUMicrosPerDelivery divides it by Delivered.
	ServerCPUSeconds     float64 `json:"serverCPUSeconds"`
	CPUMicrosPerDelivery float64 `json:"cpuMicrosPerDelivery"`
	// SysMicrosPerDelivery is the kernel's part of CPUMicrosPerDelivery
	// (system time: the write system calls and loopback TCP).
	SysMicrosPerDelivery float64 `json:"sysMicrosPerDelivery"`
	DeliveriesPerCPUSec  float64 `json:"deliveriesPerCPUSecond"`
	// CPU use in percent of one core, of the server and of this load
	// generator: the two share the machine. ClientMicrosPerDelivery is the
	// load generator's CPU per delivery (publishers included). In the
	// floor scenario the server is the writer threads and the client the
	// reader threads.
	ServerCPUPct            float64 `json:"serverCPUPct"`
	ClientCPUPct            float64 `json:"clientCPUPct"`
	ClientMicrosPerDelivery float64 `json:"clientMicrosPerDelivery"`
	ServerRSSKB             int64   `json:"serverRSSKB"`
}

// PublishResult is S4: closed-loop publishing over keep-alive HTTP. OK,
// Errors, PerSec, CPUMicrosPerPub and PublishesPerCPUSec count
// publications; P50, P99 and Max time requests, which carry Batch
// publications each in a batch run (0: one, by POST /api/publish).
type PublishResult struct {
	Publishers         int     `json:"publishers"`
	Batch              int     `json:"batch,omitempty"`
	Requests           int64   `json:"requests"`
	Seconds            float64 `json:"seconds"`
	OK                 int64   `json:"ok"`
	Errors             int64   `json:"errors"`
	PerSec             float64 `json:"publishesPerSec"`
	P50                float64 `json:"p50ms"`
	P99                float64 `json:"p99ms"`
	Max                float64 `json:"maxms"`
	CPUMicrosPerPub    float64 `json:"cpuMicrosPerPublish"`
	ServerCPUPct       float64 `json:"serverCPUPct"`
	ClientCPUPct       float64 `json:"clientCPUPct"`
	ServerCPUSeconds   float64 `json:"serverCPUSeconds"`
	ClientCPUSeconds   float64 `json:"clientCPUSeconds"`
	PublishesPerCPUSec float64 `json:"publishesPerCPUSecond"`
}

// ReconnectResult is S7: every client drops its connection at once and
// resumes from its position.
type ReconnectResult struct {
	// AllLiveSeconds runs from the drop until the last client is
	// subscribed again; P50/P99 are per client, milliseconds.
	AllLiveSeconds float64 `json:"allLiveSeconds"`
	P50            float64 `json:"p50ms"`
	P99            float64 `json:"p99ms"`
	Recovered      int     `json:"recovered"`
	Failed         int     `json:"failed"`
	Publications   int64   `json:"publications"`
	Expected       int64   `json:"expected"`
	Delivered      int64   `json:"delivered"`
	Gaps           int64   `json:"gaps"`
	Dups           int64   `json:"dups"`
}

// SlowResult is S8: the same rate with every subscriber reading, then with
// 1 % stalled; Stalled measures only the subscribers that kept reading.
type SlowResult struct {
	Slow        int   `json:"slow"`
	PayloadB    int   `json:"payloadBytes"`
	Baseline    Step  `json:"baseline"`
	Stalled     Step  `json:"stalled"`
	RSSBeforeKB int64 `json:"rssBeforeKB"`
	RSSPeakKB   int64 `json:"rssPeakKB"`
	RSSAfterKB  int64 `json:"rssAfterKB"`
	// Dropped counts stalled subscribers whose connection the server ended;
	// Codes are the disconnect codes they were sent (0: closed without one).
	Dropped int           `json:"dropped"`
	Codes   map[int64]int `json:"codes,omitempty"`
}

// StalledResult is S10: Stalled SSE subscribers that never read, beside a few
// that do (Readers), while Rate publications of PayloadB bytes a second go
// out for Seconds. Memory is sampled before connecting, with everyone
// connected and idle, at its peak while publishing, at the end of
// publishing, and after every client closed; TCP memory is the host's
// (both ends, since the clients run on the same machine).
type StalledResult struct {
	Stalled  int     `json:"stalled"`
	Rate     int     `json:"rate"`
	PayloadB int     `json:"payloadBytes"`
	Seconds  float64 `json:"seconds"`
	Readers  Step    `json:"readers"`

	RSSBeforeKB    int64 `json:"rssBeforeKB"`
	RSSIdleKB      int64 `json:"rssIdleKB"`
	RSSPeakKB      int64 `json:"rssPeakKB"`
	RSSEndKB       int64 `json:"rssEndKB"`
	RSSAfterKB     int64 `json:"rssAfterKB"`
	TCPMemBeforeKB int64 `json:"tcpMemBeforeKB"`
	TCPMemIdleKB   int64 `json:"tcpMemIdleKB"`
	TCPMemPeakKB   int64 `json:"tcpMemPeakKB"`
	TCPMemEndKB    int64 `json:"tcpMemEndKB"`
	TCPMemAfterKB  int64 `json:"tcpMemAfterKB"`
	HeapBeforeKB   int64 `json:"heapBeforeKB"`
	HeapIdleKB     int64 `json:"heapIdleKB"`
	HeapPeakKB     int64 `json:"heapPeakKB"`
	HeapEndKB      int64 `json:"heapEndKB"`
	HeapAfterKB    int64 `json:"heapAfterKB"`

	// ServerSockets* count the server's side of its connections (every
	// state, FIN-WAIT and TIME-WAIT included) with everyone connected and
	// at the end of publishing.
	ServerSocketsIdle int `json:"serverSocketsIdle"`
	ServerSocketsEnd  int `json:"serverSocketsEnd"`
	// Sessions* are the server's open sessions (from its metrics) at the
	// same moments.
	SessionsIdle int64 `json:"sessionsIdle"`
	SessionsEnd  int64 `json:"sessionsEnd"`
	// Dropped counts stalled subscribers whose connection the server let go
	// of entirely (its side gone from /proc/net/tcp) while publishing;
	// DropP50s and DropMaxs say when, in seconds after publishing began.
	Dropped  int     `json:"dropped"`
	DropP50s float64 `json:"dropP50s"`
	DropMaxs float64 `json:"dropMaxs"`
}
