package server

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/waterspout/waterspout/session"
)

// metrics is the Prometheus side of session.Metrics plus the API counters,
// on a registry of its own so that several servers (tests) do not collide
// and nothing registered globally by a library leaks into the output.
// Labels carry transports, codes and routes only: never channels or users.
type metrics struct {
	reg *prometheus.Registry

	connections  *prometheus.GaugeVec
	opened       *prometheus.CounterVec
	closed       *prometheus.CounterVec
	publications prometheus.Counter
	duplicates   prometheus.Counter
	deliveries   *prometheus.CounterVec
	slow         *prometheus.CounterVec
	apiRequests  *prometheus.CounterVec
	limited      *prometheus.CounterVec
	// originsRefused counts requests checkOrigin refused.
	originsRefused prometheus.Counter

	// perTransport caches the children of the hot-path vectors: Delivered
	// runs once per message per subscriber.
	perTransport sync.Map // transport → *transportMetrics

	// apiSeries caches the children of apiRequests, which counts every
	// publish: a lookup takes no lock and allocates nothing (the vector's
	// own hashes both labels, formats the code and takes a read lock). The
	// map is replaced whole, under apiSeriesMu, when a series is added:
	// routes and status codes are few.
	apiSeries   atomic.Pointer[map[apiSeries]prometheus.Counter]
	apiSeriesMu sync.Mutex
}

// apiSeries names a child of apiRequests.
type apiSeries struct {
	route string
	code  int
}

type transportMetrics struct {
	connections prometheus.Gauge
	opened      prometheus.Counter
	deliveries  prometheus.Counter
	slow        prometheus.Counter
}

var (
	_ session.Metrics      = (*metrics)(nil)
	_ session.LimitMetrics = (*metrics)(nil)
)

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{
		reg:          reg,
		connections:  registerGaugeVec(reg, "waterspout_connections", "Open client sessions.", "transport"),
		opened:       registerCounterVec(reg, "waterspout_sessions_opened_total", "Client sessions opened.", "transport"),
		closed:       registerCounterVec(reg, "waterspout_sessions_closed_total", "Client sessions closed, by disconnect code (1000 or 1006: the client left; 0: a poll answered or a client publish done).", "transport", "code"),
		publications: registerCounter(reg, "waterspout_publications_total", "Publications accepted (duplicates not included)."),
		duplicates:   registerCounter(reg, "waterspout_duplicate_publications_total", "Publishes answered from an idempotency key and not delivered again."),
		deliveries:   registerCounterVec(reg, "waterspout_deliveries_total", "Publications queued to a client session.", "transport"),
		slow:         registerCounterVec(reg, "waterspout_slow_clients_total", "Sessions dropped because their send queue overflowed.", "transport"),
		apiRequests:  registerCounterVec(reg, "waterspout_api_requests_total", "Requests to /api/*, by route pattern and status code.", "route", "code"),
		limited:      registerCounterVec(reg, "waterspout_limited_total", "Requests, commands and sessions refused or ended by a limit, by limit.", "limit"),
		originsRefused: registerCounter(reg, "waterspout_origins_refused_total",
			"Requests refused because their Origin is not allowed (any route: connects, client publishes, /api/*, /admin/state)."),
	}
	for _, l := range limitNames { // every series from the start, at 0
		m.limited.WithLabelValues(l)
	}
	return m
}

// registerCounter, registerCounterVec and registerGaugeVec make a metric and register it on reg.
func registerCounter(reg prometheus.Registerer, name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	reg.MustRegister(c)
	return c
}

func registerCounterVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	reg.MustRegister(c)
	return c
}

func registerGaugeVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	reg.MustRegister(g)
	return g
}

// channelStates exports the memory broker's channel-state count, so that an
// operator sees how close the node is to --max-server-channels. It is read
// at scrape time: nothing is added to the subscribe or publish path.
func (m *metrics) channelStates(count func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "waterspout_channel_states",
		Help: "Channel states the memory broker holds (capped by --max-server-channels).",
	}, func() float64 { return float64(count()) }))
}

func (m *metrics) transport(t string) *transportMetrics {
	if v, ok := m.perTransport.Load(t); ok {
		return v.(*transportMetrics)
	}
	v, _ := m.perTransport.LoadOrStore(t, &transportMetrics{
		connections: m.connections.WithLabelValues(t),
		opened:      m.opened.WithLabelValues(t),
		deliveries:  m.deliveries.WithLabelValues(t),
		slow:        m.slow.WithLabelValues(t),
	})
	return v.(*transportMetrics)
}

// SessionOpened implements session.Metrics.
func (m *metrics) SessionOpened(t string) {
	tm := m.transport(t)
	tm.opened.Inc()
	tm.connections.Inc()
}

// SessionClosed implements session.Metrics. A frame over
// limits.maxMessageBytes ends its session with 3501, which is where that
// limit is counted for every transport.
func (m *metrics) SessionClosed(t string, code int) {
	m.transport(t).connections.Dec()
	m.closed.WithLabelValues(t, strconv.Itoa(code)).Inc()
	if code == session.DisconnectMessageTooLarge.Code {
		m.Limited(limitMessageSize)
	}
}

// Published implements session.Metrics.
func (m *metrics) Published(duplicate bool) {
	if duplicate {
		m.duplicates.Inc()
		return
	}
	m.publications.Inc()
}

// Delivered implements session.Metrics.
func (m *metrics) Delivered(t string) { m.transport(t).deliveries.Inc() }

// SlowClient implements session.Metrics: the queued-bytes limit.
func (m *metrics) SlowClient(t string) {
	m.transport(t).slow.Inc()
	m.Limited(limitQueue)
}

// Limited implements session.LimitMetrics and counts the server's own limits.
func (m *metrics) Limited(limit string) { m.limited.WithLabelValues(limit).Inc() }

// apiRequest counts one /api/* answer.
func (m *metrics) apiRequest(route string, code int) {
	k := apiSeries{route, code}
	if series := m.apiSeries.Load(); series != nil {
		if c, ok := (*series)[k]; ok {
			c.Inc()
			return
		}
	}
	m.addAPISeries(k).Inc()
}

// addAPISeries returns the child of apiRequests for k, adding it to the
// cache. apiSeriesMu must not be held on entry.
func (m *metrics) addAPISeries(k apiSeries) prometheus.Counter {
	m.apiSeriesMu.Lock()
	defer m.apiSeriesMu.Unlock()
	old := map[apiSeries]prometheus.Counter{}
	if p := m.apiSeries.Load(); p != nil {
		old = *p
	}
	if c, ok := old[k]; ok {
		return c
	}
	series := make(map[apiSeries]prometheus.Counter, len(old)+1)
	maps.Copy(series, old)
	c := m.apiRequests.WithLabelValues(k.route, strconv.Itoa(k.code))
	series[k] = c
	m.apiSeries.Store(&series)
	return c
}

// handler serves the registry in the Prometheus exposition format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
