package session

// Metrics receives the node's counters. Labels are transports and codes only,
// never channel names or user ids. Implementations must be cheap and safe for
// concurrent use: Delivered is on the fan-out hot path.
type Metrics interface {
	SessionOpened(transport string)
	SessionClosed(transport string, code int)
	Published(duplicate bool)
	Delivered(transport string)
	SlowClient(transport string)
}

// NopMetrics discards everything.
type NopMetrics struct{}

func (NopMetrics) SessionOpened(string)      {}
func (NopMetrics) SessionClosed(string, int) {}
func (NopMetrics) Published(bool)            {}
func (NopMetrics) Delivered(string)          {}
func (NopMetrics) SlowClient(string)         {}
