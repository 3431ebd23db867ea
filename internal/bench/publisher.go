package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// publisher publishes sequenced payloads to a fixed list of channels:
// publication g (counted over the whole scenario) goes to channel g % C
// with sequence number g / C + 1, so each channel's sequence has no holes
// and a subscriber can count gaps and duplicates.
type publisher struct {
	target   *Target
	client   *http.Client
	rec      *recorder
	channels []string
	workers  int   // divides len(channels), so a channel belongs to one worker
	next     int64 // publications so far
	pad      int   // extra payload bytes
}

func newPublisher(t *Target, rec *recorder, channels []string, workers int) *publisher {
	w := 1
	for k := min(workers, len(channels)); k >= 1; k-- {
		if len(channels)%k == 0 {
			w = k
			break
		}
	}
	return &publisher{target: t, client: newPublishClient(w), rec: rec, channels: channels, workers: w}
}

// payload builds the payload of sequence seq intended at t.
func (p *publisher) payload(buf []byte, seq, t int64) []byte {
	buf = appendPayload(buf[:0], seq, t)
	if p.pad > 0 {
		// Pad inside the object: {"s":…,"t":…,"x":"…","p":"xxxx"}.
		buf = buf[:len(buf)-1]
		buf = append(buf, `,"p":"`...)
		for range p.pad {
			buf = append(buf, 'x')
		}
		buf = append(buf, `"}`...)
	}
	return buf
}

// schedule publishes count publications at rate per second on an open-loop
// schedule: publication j is intended at start + j/rate and carries that
// time, whether or not the publisher is late, so delays show up as latency
// instead of as a slower rate. Each worker owns whole channels and
// publishes its share in order. It returns the number of failed publishes.
func (p *publisher) schedule(ctx context.Context, count int64, rate float64) (errs int64) {
	base := p.next
	p.next += count
	start := p.rec.now()
	interval := float64(time.Second) / rate
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := range p.workers {
		wg.Go(func() {
			var buf []byte
			timer := time.NewTimer(0)
			defer timer.Stop()
			<-timer.C
			for j := int64(w); j < count; j += int64(p.workers) {
				g := base + j
				ch := p.channels[g%int64(len(p.channels))]
				seq := g/int64(len(p.channels)) + 1
				intended := start + int64(float64(j)*interval)
				if wait := time.Duration(intended - p.rec.now()); wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-ctx.Done():
						return
					}
				}
				buf = p.payload(buf, seq, intended)
				if err := p.target.publish(ctx, p.client, ch, buf); err != nil {
					failed.Add(1)
					p.rec.errs.add(err)
				}
			}
		})
	}
	wg.Wait()
	return failed.Load()
}

// lastSeq returns the sequence number of the last publication to channel
// index i, 0 if none.
func (p *publisher) lastSeq(i int) int64 {
	c := int64(len(p.channels))
	if p.next <= int64(i) {
		return 0
	}
	return (p.next-1-int64(i))/c + 1
}

// warmUp publishes warm-up payloads (sequence 0) to every channel until
// every client has seen one, so that measuring starts only once every
// subscription delivers; Nchan, for one, subscribes a WebSocket
// asynchronously.
func (p *publisher) warmUp(ctx context.Context, clients []*client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var buf []byte
	for {
		for _, ch := range p.channels {
			buf = p.payload(buf, 0, 0)
			if err := p.target.publish(ctx, p.client, ch, buf); err != nil {
				return err
			}
		}
		if waitUntil(ctx, 200*time.Millisecond, func() bool {
			for _, c := range clients {
				if !c.warm.Load() {
					return false
				}
			}
			return true
		}) {
			return nil
		}
		if ctx.Err() != nil {
			n := 0
			for _, c := range clients {
				if !c.warm.Load() {
					n++
				}
			}
			return errWarmUp{n, len(clients)}
		}
	}
}

type errWarmUp struct{ cold, all int }

func (e errWarmUp) Error() string {
	return fmt.Sprintf("warm-up: %d of %d subscribers never received a message", e.cold, e.all)
}

// waitUntil polls cond every 20 ms for up to d; it reports whether cond held.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}
