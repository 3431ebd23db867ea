package sse

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	r3 "github.com/r3labs/sse/v2"
	"gopkg.in/cenkalti/backoff.v1"

	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

// handlerBroker is a memory broker that lets a test reach the node's broker
// handler, to report a gap as a real broker would after losing its link.
type handlerBroker struct {
	*session.MemoryBroker
	h session.BrokerHandler
}

func (b *handlerBroker) SetHandler(h session.BrokerHandler) {
	b.h = h
	b.MemoryBroker.SetHandler(h)
}

// TestR3labsClient receives a numbered stream with r3labs/sse's client, a
// client nobody here wrote, through cut connections (the client reconnects
// with Last-Event-ID) and a clean end after a disconnect frame: every message
// arrives exactly once and in order.
func TestR3labsClient(t *testing.T) {
	hb := &handlerBroker{}
	e := newEnv(t, envConfig{Broker: func(b *session.MemoryBroker) session.Broker {
		hb.MemoryBroker = b
		return hb
	}})
	const ch, rounds, perRound = "seq", 8, 50

	got := make(chan int, rounds*perRound*2)
	var dropped atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runR3labs(ctx, e.Srv.URL+"/connect/sse?channel="+ch, e.Srv.Client(), got, &dropped)
	}()
	defer func() { cancel(); <-done }()

	var recv []int
	wait := func(n int) {
		t.Helper()
		timeout := time.After(wiretest.WaitLimit)
		for len(recv) < n {
			select {
			case v := <-got:
				recv = append(recv, v)
			case <-timeout:
				t.Fatalf("received %d messages, want %d", len(recv), n)
			}
		}
	}
	e.WaitSessions(t, 1)
	sent := 0
	for r := range rounds {
		e.Publish(t, ch, sent+1, sent+perRound)
		sent += perRound
		switch r % 3 {
		case 0: // cut while the events are still being written
			e.Srv.CloseClientConnections()
		case 1: // cut a live, idle stream
			wait(sent)
			e.Srv.CloseClientConnections()
		case 2: // the server ends the stream cleanly with a disconnect frame
			wait(sent)
			hb.h.HandleGap(ch)
		}
	}
	// A duplicate of anything so far would arrive before this last message.
	e.Publish(t, ch, sent+1, sent+1)
	sent++
	wait(sent)
	if !slices.Equal(recv, wiretest.Seq(1, sent)) {
		t.Fatalf("r3labs client received %v, want 1..%d once each", recv, sent)
	}
	var gaps int
	for _, c := range e.Metrics.ClosedCodes("sse") {
		if c == session.DisconnectInsufficientState.Code {
			gaps++
		}
	}
	t.Logf("cut-off events dropped: %d", dropped.Load())
	if gaps == 0 {
		t.Error("no stream ended with a disconnect frame: the clean-EOF path was not exercised")
	}
}

// runR3labs subscribes with r3labs' client until ctx ends, sending each
// message's number to got. It handles the client's two quirks
// (LIBRARIES.md):
//   - Subscribe returns nil when a stream ends cleanly and does not
//     reconnect: subscribe again, keeping LastEventID.
//   - When a connection breaks, the client dispatches the cut-off event and
//     records its id, where a browser drops it. An event counts only when
//     its data parses and, for a message, its id is the cursor at that
//     message; otherwise LastEventID goes back to the last good id and the
//     event arrives again after the reconnect.
func runR3labs(ctx context.Context, url string, hc *http.Client, got chan<- int, dropped *atomic.Int64) {
	c := r3.NewClient(url)
	c.Connection = hc
	strategy := backoff.NewExponentialBackOff()
	strategy.InitialInterval = 10 * time.Millisecond
	strategy.MaxInterval = 200 * time.Millisecond
	strategy.MaxElapsedTime = 0 // the default gives up after 15 minutes
	c.ReconnectStrategy = backoff.WithContext(strategy, ctx)

	var good []byte // the id of the last event that counted
	handle := func(ev *r3.Event) {
		if len(ev.Data) == 0 { // the retry: field alone
			return
		}
		var f frame
		ok := json.Unmarshal(ev.Data, &f) == nil
		if ok && (f.Type == "message" || f.Type == "subscribed") {
			cur, err := session.DecodeCursor(string(ev.ID))
			ok = err == nil && cur[f.Channel] == session.Position{Epoch: f.Epoch, Offset: f.Offset}
		}
		if ok && f.Type == "message" && bytes.Equal(ev.ID, good) {
			ok = false // no id of its own: r3labs filled in the previous one
		}
		if !ok {
			dropped.Add(1)
			c.LastEventID.Store(good)
			return
		}
		if len(ev.ID) > 0 {
			good = append([]byte(nil), ev.ID...)
		}
		if f.Type == "message" {
			n, _ := strconv.Atoi(string(f.Data))
			got <- n
		}
	}
	// With a strategy that never gives up, Subscribe returns an error only
	// once ctx has ended, and nil after a clean end of stream.
	for ctx.Err() == nil {
		_ = c.SubscribeRawWithContext(ctx, handle)
	}
}
