package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
)

func TestSubscribeFresh(t *testing.T) {
	n := newTestNode(t, Config{})
	publishN(t, n, "news", 1, 3)
	s := mustSession(t, n)
	if err := s.Subscribe(context.Background(), SubscribeRequest{ID: 7, Channel: "news"}); err != nil {
		t.Fatal(err)
	}
	publishN(t, n, "news", 4, 5)
	fs := drain(t, s)
	if fs[0].Type != "subscribed" || fs[0].ID != 7 || fs[0].Offset != 3 || fs[0].Recovered != nil {
		t.Fatalf("first frame %+v: want subscribed id 7 at offset 3 without recovered", fs[0])
	}
	if got := messageData(t, fs); fmt.Sprint(got) != fmt.Sprint(seq(4, 5)) {
		t.Fatalf("a fresh subscription got %v, want only what came after it", got)
	}
}

func TestRecovery(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t, Config{Namespaces: []Namespace{{Name: "small", HistorySize: 5, HistoryTTL: time.Minute, Anonymous: true}}})
	publishN(t, n, "small:a", 1, 10) // history keeps 6..10
	top, _ := n.History(ctx, "small:a", nil, 0)
	epoch := top.Top.Epoch

	tests := []struct {
		name      string
		since     Position
		recovered bool
		want      []int
		announced uint64 // offset in the subscribed frame
	}{
		{"in window", Position{epoch, 7}, true, seq(8, 10), 7},
		{"just before window", Position{epoch, 5}, true, seq(6, 10), 5},
		{"at top", Position{epoch, 10}, true, nil, 10},
		{"out of window", Position{epoch, 2}, false, nil, 10},
		{"wrong epoch", Position{"gone", 7}, false, nil, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSession(t, n)
			since := tt.since
			if err := s.Subscribe(ctx, SubscribeRequest{Channel: "small:a", Since: &since}); err != nil {
				t.Fatal(err)
			}
			fs := drain(t, s)
			if fs[0].Type != "subscribed" || fs[0].Recovered == nil || *fs[0].Recovered != tt.recovered {
				t.Fatalf("subscribed frame %+v, want recovered=%v", fs[0], tt.recovered)
			}
			if fs[0].Offset != tt.announced || fs[0].Epoch != epoch {
				t.Fatalf("subscribed at %s/%d, want %s/%d", fs[0].Epoch, fs[0].Offset, epoch, tt.announced)
			}
			if got := messageData(t, fs); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("replayed %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRecoverySeamUnderConcurrentPublishing resumes many sessions while a
// publisher keeps going: each must see every offset after its position
// exactly once, in order, across the replay→live seam.
func TestRecoverySeamUnderConcurrentPublishing(t *testing.T) {
	ctx := context.Background()
	// History covers the whole run, so every resume must be recovered.
	n := newTestNode(t, Config{Namespaces: []Namespace{{HistorySize: 5000, HistoryTTL: time.Minute, Anonymous: true}}})
	publishN(t, n, "seam", 1, 50)
	epoch := mustTop(t, n, "seam").Epoch

	const total = 3000
	var pubWG sync.WaitGroup
	pubWG.Add(1)
	go func() {
		defer pubWG.Done()
		publishN(t, n, "seam", 51, total)
	}()

	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(since uint64) {
			defer wg.Done()
			s, err := n.NewSession("test")
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close(Disconnect{})
			if err := s.Subscribe(ctx, SubscribeRequest{Channel: "seam", Since: &Position{epoch, since}}); err != nil {
				t.Error(err)
				return
			}
			var got []int
			var buf []Item
			for len(got) < total-int(since) {
				buf, err = s.Next(ctx, 5*time.Second, buf)
				if err != nil || len(buf) == 0 {
					t.Errorf("since %d: stalled after %d messages (err %v)", since, len(got), err)
					return
				}
				fs := decodeItems(t, buf)
				if fs[0].Type == "subscribed" && (fs[0].Recovered == nil || !*fs[0].Recovered) {
					t.Errorf("since %d: not recovered", since)
					return
				}
				got = append(got, messageData(t, fs)...)
			}
			for j, v := range got {
				if v != int(since)+1+j {
					t.Errorf("since %d: message %d is %d, want %d (gap or duplicate)", since, j, v, int(since)+1+j)
					return
				}
			}
		}(uint64(i * 2))
	}
	wg.Wait()
	pubWG.Wait()
}

func mustTop(t *testing.T, n *Node, ch string) Position {
	t.Helper()
	res, err := n.History(context.Background(), ch, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return res.Top
}

// TestSlowSubscriberIsDropped: a session whose writer never reads is
// disconnected as slow once its queue is full; publishing never blocks and
// the healthy session gets everything.
func TestSlowSubscriberIsDropped(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t, Config{Limits: Limits{MaxQueueBytes: 16 << 10}})
	slow := mustSession(t, n)
	fast := mustSession(t, n)
	for _, s := range []*Session{slow, fast} {
		if err := s.Subscribe(ctx, SubscribeRequest{Channel: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	payload := json.RawMessage(`"` + strings.Repeat("x", 1000) + `"`)
	var got int
	var buf []Item
	for i := 0; i < 200; i++ {
		if _, err := n.Publish(ctx, "c", payload, ""); err != nil {
			t.Fatal(err)
		}
		var err error
		buf, err = fast.Next(ctx, time.Second, buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range buf {
			if it.Channel == "c" && strings.Contains(string(it.Frame), `"type":"message"`) {
				got++
			}
		}
	}
	if got != 200 {
		t.Fatalf("healthy session got %d of 200", got)
	}
	_, err := slow.Next(ctx, time.Millisecond, nil)
	if !errors.Is(err, DisconnectSlow) {
		t.Fatalf("slow session: %v, want %v", err, DisconnectSlow)
	}
	slow.Close(Disconnect{})
	if n.SessionCount() != 1 {
		t.Fatalf("%d sessions after the slow one closed", n.SessionCount())
	}
}

func TestLiveGapFailsSession(t *testing.T) {
	n := newTestNode(t, Config{})
	s := mustSession(t, n)
	if err := s.Subscribe(context.Background(), SubscribeRequest{Channel: "g"}); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	top := mustTop(t, n, "g")
	// A broker that skipped an offset (a lost pub/sub message): the session
	// must not deliver past the gap silently.
	n.hub.broadcast(&Publication{Channel: "g", Epoch: top.Epoch, Offset: top.Offset + 2, Data: json.RawMessage(`1`)})
	if _, err := s.Next(context.Background(), time.Millisecond, nil); !errors.Is(err, DisconnectInsufficientState) {
		t.Fatalf("after a gap: %v, want %v", err, DisconnectInsufficientState)
	}
}

func TestHandleCommand(t *testing.T) {
	n := newTestNode(t, Config{
		Limits:     Limits{MaxMessageBytes: 512},
		Namespaces: []Namespace{{Name: "chat", Anonymous: true, ClientPublish: true, HistorySize: 10, HistoryTTL: time.Minute}},
	})
	tests := []struct {
		name string
		in   string
		want []wire.Frame // compared on Type, ID, Code, Channel
	}{
		{"subscribe", `{"type":"subscribe","id":1,"channel":"news"}`, []wire.Frame{{Type: "subscribed", ID: 1, Channel: "news"}}},
		{"two in one frame", `{"type":"subscribe","id":1,"channel":"a"}` + "\n" + `{"type":"ping","id":2}`,
			[]wire.Frame{{Type: "subscribed", ID: 1, Channel: "a"}, {Type: "reply", ID: 2}}},
		{"twice", `{"type":"subscribe","id":1,"channel":"a"}` + "\n" + `{"type":"subscribe","id":2,"channel":"a"}`,
			[]wire.Frame{{Type: "subscribed", ID: 1, Channel: "a"}, {Type: "error", ID: 2, Code: 409}}},
		{"unsubscribe unknown", `{"type":"unsubscribe","id":3,"channel":"zzz"}`, []wire.Frame{{Type: "error", ID: 3, Code: 404}}},
		{"publish forbidden", `{"type":"publish","id":4,"channel":"news","data":1}`, []wire.Frame{{Type: "error", ID: 4, Code: 403}}},
		{"publish allowed", `{"type":"publish","id":5,"channel":"chat:x","data":{"t":"hi"}}`, []wire.Frame{{Type: "reply", ID: 5, Channel: "chat:x"}}},
		{"publish without data", `{"type":"publish","id":6,"channel":"chat:x"}`, []wire.Frame{{Type: "error", ID: 6, Code: 400}}},
		{"malformed", `{"type":`, []wire.Frame{{Type: "error", Code: 400}}},
		{"not an object", `[1,2]`, []wire.Frame{{Type: "error", Code: 400}}},
		{"unknown type", `{"type":"launch","id":8}`, []wire.Frame{{Type: "error", ID: 8, Code: 400}}},
		{"bad channel", `{"type":"subscribe","id":9,"channel":"a b"}`, []wire.Frame{{Type: "error", ID: 9, Code: 400}}},
		{"bad since", `{"type":"subscribe","id":10,"channel":"a","since":{"epoch":"","offset":1}}`, []wire.Frame{{Type: "error", ID: 10, Code: 400}}},
		{"auth without tokens", `{"type":"auth","id":11,"token":"x"}`, []wire.Frame{{Type: "error", ID: 11, Code: 400}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSession(t, n)
			if err := s.HandleCommand(context.Background(), []byte(tt.in)); err != nil {
				t.Fatal(err)
			}
			got := drain(t, s)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d frames %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Type != w.Type || g.ID != w.ID || g.Code != w.Code || (w.Channel != "" && g.Channel != w.Channel) {
					t.Fatalf("frame %d = %+v, want %+v", i, g, w)
				}
				if g.Type == "error" && g.Reason == "" {
					t.Fatalf("error frame without a reason: %+v", g)
				}
			}
			// Bad input changed nothing else: the session still works.
			if err := s.HandleCommand(context.Background(), []byte(`{"type":"ping","id":99}`)); err != nil {
				t.Fatal(err)
			}
			if f := drain(t, s); len(f) != 1 || f[0].Type != "reply" || f[0].ID != 99 {
				t.Fatalf("session unusable after %q: %+v", tt.in, f)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		s := mustSession(t, n)
		big := `{"type":"ping","id":1,"data":"` + strings.Repeat("x", 600) + `"}`
		if err := s.HandleCommand(context.Background(), []byte(big)); !errors.Is(err, DisconnectMessageTooLarge) {
			t.Fatalf("oversized frame: %v", err)
		}
	})
}

func TestSubscribeLimits(t *testing.T) {
	n := newTestNode(t, Config{Limits: Limits{MaxChannels: 2}, Namespaces: []Namespace{{Name: "private", HistorySize: 1, HistoryTTL: time.Minute}}})
	s := mustSession(t, n)
	ctx := context.Background()
	for _, ch := range []string{"a", "b"} {
		if err := s.Subscribe(ctx, SubscribeRequest{Channel: ch}); err != nil {
			t.Fatal(err)
		}
	}
	var e *Error
	if err := s.Subscribe(ctx, SubscribeRequest{Channel: "c"}); !errors.As(err, &e) || e.Code != 429 {
		t.Fatalf("third channel: %v, want 429", err)
	}
	s2 := mustSession(t, n)
	if err := s2.Subscribe(ctx, SubscribeRequest{Channel: "private:x"}); !errors.As(err, &e) || e.Code != 403 {
		t.Fatalf("anonymous subscribe to a closed namespace: %v, want 403", err)
	}
	if err := s2.Subscribe(ctx, SubscribeRequest{Channel: strings.Repeat("x", MaxChannelLen+1)}); !errors.As(err, &e) || e.Code != 400 {
		t.Fatalf("long channel name: %v, want 400", err)
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t, Config{})
	s := mustSession(t, n)
	s.Subscribe(ctx, SubscribeRequest{Channel: "u"})
	drain(t, s)
	if err := s.Unsubscribe("u"); err != nil {
		t.Fatal(err)
	}
	publishN(t, n, "u", 1, 3)
	if fs := drain(t, s); len(fs) != 0 {
		t.Fatalf("after unsubscribe got %+v", fs)
	}
	if c := n.hub.count(); c != 0 {
		t.Fatalf("hub still holds %d channels", c)
	}
}

// A subscription that left the session gets nothing even while the hub
// still holds it (its hub entry goes after the session's lock is
// released), and a hub removal that arrives after the session subscribed
// again does not cut the new subscription off.
func TestResubscribeSurvivesALateRemoval(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t, Config{})
	s := mustSession(t, n)
	if err := s.Subscribe(ctx, SubscribeRequest{Channel: "r"}); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	s.mu.Lock()
	old := s.subs["r"]
	old.dropped = true // as Unsubscribe leaves it before it reaches the hub
	delete(s.subs, "r")
	s.mu.Unlock()
	publishN(t, n, "r", 1, 1)
	if fs := drain(t, s); len(fs) != 0 {
		t.Fatalf("a dropped subscription received %+v", fs)
	}
	if err := s.Subscribe(ctx, SubscribeRequest{Channel: "r"}); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	n.hub.remove("r", s, old) // the first Unsubscribe's removal, late
	publishN(t, n, "r", 2, 3)
	if got := messageData(t, drain(t, s)); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("after subscribing again got %v, want [2 3]", got)
	}
}

func TestShutdownDisconnectsEverySession(t *testing.T) {
	n := newTestNode(t, Config{})
	var sessions []*Session
	for i := 0; i < 5; i++ {
		s := mustSession(t, n)
		s.Subscribe(context.Background(), SubscribeRequest{Channel: "x"})
		drain(t, s)
		sessions = append(sessions, s)
	}
	done := make(chan error, 1)
	go func() { done <- n.Shutdown(context.Background()) }()
	for _, s := range sessions {
		// What a transport does: Next reports the disconnect, then Close.
		_, err := s.Next(context.Background(), time.Minute, nil)
		var d Disconnect
		if !errors.As(err, &d) || d != DisconnectShutdown || !d.Reconnect {
			t.Fatalf("Next during shutdown: %v", err)
		}
		s.Close(d)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := n.NewSession("test"); !errors.Is(err, DisconnectShutdown) {
		t.Fatalf("NewSession after shutdown: %v", err)
	}
	if err := n.Ready(context.Background()); err == nil {
		t.Fatal("node ready after shutdown")
	}
}

func TestDisconnectCodeRanges(t *testing.T) {
	seen := map[int]bool{}
	for _, d := range Disconnects {
		if seen[d.Code] {
			t.Fatalf("code %d listed twice", d.Code)
		}
		seen[d.Code] = true
		inReconnectRange := d.Code >= 3000 && d.Code < 3500
		if inReconnectRange != d.Reconnect || d.Code < 3000 || d.Code >= 4000 || d.Reason == "" {
			t.Fatalf("%+v is outside its documented range", d)
		}
	}
}

// TestLargeReplayIsNotSlow: resuming with a backlog larger than the queue
// bound must succeed, or the client would reconnect with the same position
// and fail again forever.
func TestLargeReplayIsNotSlow(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t, Config{Limits: Limits{MaxQueueBytes: 8 << 10}})
	pad := strings.Repeat("x", 1000)
	for i := 1; i <= 100; i++ {
		if _, err := n.Publish(ctx, "big", json.RawMessage(fmt.Sprintf(`{"n":%d,"p":%q}`, i, pad)), ""); err != nil {
			t.Fatal(err)
		}
	}
	s := mustSession(t, n)
	if err := s.Subscribe(ctx, SubscribeRequest{Channel: "big", Since: &Position{mustTop(t, n, "big").Epoch, 0}}); err != nil {
		t.Fatal(err)
	}
	items, err := s.Next(ctx, time.Second, nil)
	if err != nil {
		t.Fatalf("resume with a 100 KB backlog and an 8 KB queue: %v", err)
	}
	if len(items) != 101 { // subscribed + 100 messages
		t.Fatalf("got %d frames, want 101", len(items))
	}
}

func TestPublishRejectsBadInput(t *testing.T) {
	n := newTestNode(t, Config{Limits: Limits{MaxMessageBytes: 100}})
	// The reasons are the HTTP API's for the same faults.
	tests := []struct {
		name, ch, data, key string
		code                int
		reason              string
	}{
		{"bad channel", "a b", `1`, "", 400, ""},
		{"not JSON", "a", `{`, "", 400, "data is not valid JSON"},
		{"empty", "a", ``, "", 400, "data is required"},
		{"invalid UTF-8 in a string", "a", "\"\xff\"", "", 400, "data is not valid UTF-8"},
		{"a lone surrogate", "a", `"\ud800"`, "", 400, "data is not valid UTF-8"},
		{"too large", "a", `"` + strings.Repeat("x", 100) + `"`, "", 413, ""},
		{"long key", "a", `1`, strings.Repeat("k", MaxKeyLen+1), 400, ""},
		{"key not UTF-8", "a", `1`, "\xff", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := n.Publish(context.Background(), tt.ch, json.RawMessage(tt.data), tt.key)
			got := AsError(err)
			if err == nil || got.Code != tt.code || tt.reason != "" && got.Reason != tt.reason {
				t.Fatalf("Publish: %v, want code %d %q", err, tt.code, tt.reason)
			}
		})
	}
	if top := mustTop(t, n, "a"); top.Offset != 0 {
		t.Fatalf("rejected publishes moved the offset to %d", top.Offset)
	}
}

// TestEpochChangeReplaysTheNewHistory: a client whose history is gone (a
// restart) is told recovered:false, and still gets what the new epoch holds
// from its start instead of silently starting at its top.
func TestEpochChangeReplaysTheNewHistory(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t, Config{})
	publishN(t, n, "r", 1, 4) // published after the restart, before the client came back
	s := mustSession(t, n)
	if err := s.Subscribe(ctx, SubscribeRequest{Channel: "r", Since: &Position{"oldEpoch", 90}}); err != nil {
		t.Fatal(err)
	}
	publishN(t, n, "r", 5, 6)
	fs := drain(t, s)
	if fs[0].Type != "subscribed" || fs[0].Recovered == nil || *fs[0].Recovered || fs[0].Offset != 0 || fs[0].Epoch == "oldEpoch" {
		t.Fatalf("subscribed %+v: want recovered:false at offset 0 of the new epoch", fs[0])
	}
	if got := messageData(t, fs); fmt.Sprint(got) != fmt.Sprint(seq(1, 6)) {
		t.Fatalf("got %v, want the whole new epoch 1..6", got)
	}
}

// LastPublished tells a busy channel from an idle one: zero until this
// node hands out a publication of one of the session's channels, then the
// time of the latest.
func TestLastPublished(t *testing.T) {
	n := newTestNode(t, Config{})
	s, err := n.NewSession("test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ClosedByClient)
	for _, ch := range []string{"a", "b"} {
		if err := s.Subscribe(context.Background(), SubscribeRequest{Channel: ch}); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.LastPublished(); !got.IsZero() {
		t.Fatalf("LastPublished %v before any publication", got)
	}
	before := time.Now()
	if _, err := n.Publish(context.Background(), "b", json.RawMessage(`1`), ""); err != nil {
		t.Fatal(err)
	}
	if got := s.LastPublished(); got.Before(before) || got.After(time.Now()) {
		t.Fatalf("LastPublished %v, want a time since %v", got, before)
	}
}

// A channel whose sessions all leave and come back (long-polls after an
// answer) is still known as recently published.
func TestLastPublishedOutlivesTheLastSession(t *testing.T) {
	n := newTestNode(t, Config{})
	first, _ := n.NewSession("test")
	if err := first.Subscribe(context.Background(), SubscribeRequest{Channel: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Publish(context.Background(), "c", json.RawMessage(`1`), ""); err != nil {
		t.Fatal(err)
	}
	want := first.LastPublished()
	first.Close(ClosedByClient)
	again, _ := n.NewSession("test")
	defer again.Close(ClosedByClient)
	if err := again.Subscribe(context.Background(), SubscribeRequest{Channel: "c"}); err != nil {
		t.Fatal(err)
	}
	if got := again.LastPublished(); !got.Equal(want) || got.IsZero() {
		t.Fatalf("LastPublished %v after the channel emptied, want %v", got, want)
	}
}
