package session

import (
	"context"
	"crypto/rand"
	"sync"
	"time"
)

// Session is one client's state on this node, whatever its transport: its
// subscriptions with their positions, and a bounded queue of frames for the
// transport's single writer.
type Session struct {
	id        string
	transport string
	node      *Node

	// mu guards every field below it (see the lock graph in doc.go). It is
	// taken on the fan-out path (deliver), under a hub shard lock.
	mu     sync.Mutex
	user   string // authenticated subject, "" for anonymous
	subs   map[string]*subscription
	queue  []Item
	queued int // bytes in queue, with per-item overhead
	// onWake is how the writer learns that the queue is no longer empty,
	// or that the session has ended (SetWakeup; Next sets its own while it
	// waits). It is the session's one wake-up mechanism.
	onWake func()
	closed bool
	// flush is set when the session ended with its queue kept (see
	// endAfterQueued): the writer gets the queue, then the reason.
	flush bool
	ended bool // Close has run
	// noPresence keeps the session out of presence (see SkipPresence).
	noPresence bool
	// indexPos is the session's place in Node.users[indexedAs]; guarded by
	// Node.mu, not Session.mu (it fills the flags' word: no extra size).
	indexPos int32
	reason   Disconnect
	// commands is the Config.CommandRate bucket.
	commands commandBucket
	// pollClient is set on a long-poll session: the client id of its
	// presence entries, kept by a lease (see PollPresence); pollIssued is
	// when its client was given the id it claims with (zero: unknown).
	pollClient string
	pollIssued time.Time
	// indexedAs is the user the node's index files the session under;
	// guarded by Node.mu, not Session.mu.
	indexedAs string
}

// subscription is a session's state in one channel.
type subscription struct {
	epoch  string
	offset uint64 // the last offset queued for the client
	// since is when the subscribe began, in Unix milliseconds: an
	// unsubscribe order that reaches the node late spares a subscription
	// made after it was given (see Control.Late).
	since int64
	// While a subscribe reads history, live publications wait in buf so the
	// replay→live seam has no gap and no duplicate.
	buf []*Publication
	// leased is the client id of a long-poll session's entry, kept by a
	// lease when the session closes; "" for an entry of the session's own.
	leased    string
	buffering bool
	// dropped is set when the subscription leaves the session, which the
	// hub may learn of later (see deliver).
	dropped bool
	// present is set once the session's presence entry for the channel is
	// in place; whoever takes the subscription out removes it.
	present bool
}

// Item is one queued frame. Channel and Position are set on `message` and
// `subscribed` frames: the client's position in Channel once the frame is
// delivered. Writers that hand out cursors (SSE, poll) track them.
type Item struct {
	Frame    []byte
	Channel  string
	Position Position
}

// itemOverhead is what a queued item costs beyond its frame, for the queue bound.
const itemOverhead = 64

// ID returns the session id sent in the hello frame.
func (s *Session) ID() string { return s.id }

// Transport returns the transport name sent in the hello frame.
func (s *Session) Transport() string { return s.transport }

// SetUser records the authenticated subject of the session.
func (s *Session) SetUser(sub string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user = sub
	s.node.index(s, sub)
}

// User returns the authenticated subject, or "".
func (s *Session) User() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// Hello returns the session's hello frame; transports write it first.
func (s *Session) Hello() []byte {
	s.mu.Lock()
	client := s.pollClient
	s.mu.Unlock()
	return mustJSON(helloFrame{
		Type: "hello", Session: s.id, Transport: s.transport,
		Ping: int(s.node.cfg.Ping / time.Second), Limits: s.node.cfg.Limits,
		Client: client,
	})
}

// Channels returns the channels the session is subscribed to.
func (s *Session) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.subs))
	for ch := range s.subs {
		out = append(out, ch)
	}
	return out
}

// LastPublished returns when this node last delivered a publication of
// any of the session's channels to its local sessions (zero for never, or
// when it no longer remembers). Transports use it to tell
// a busy channel, whose next message is likely soon, from an idle one.
func (s *Session) LastPublished() time.Time {
	var last time.Time
	for _, ch := range s.Channels() {
		if t := s.node.hub.lastPublished(ch); t.After(last) {
			last = t
		}
	}
	return last
}

// Send queues a frame for the client (a reply, an error). It reports false
// when the session is closed or the frame overflowed the queue.
func (s *Session) Send(frame []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushLocked(Item{Frame: frame})
}

// Next waits until frames are queued and returns all of them, so the writer
// sends them in one write. It returns an empty batch when wait passes with
// nothing queued (time for a heartbeat), ctx's error when ctx ends, and the
// session's Disconnect once it has failed or closed. buf, the previous batch,
// is reused.
//
// Next is for a writer that waits on a goroutine of its own (tests, tools;
// the transports use a transports.Pump, woken by SetWakeup): while it waits, its wake-up replaces the one set
// with SetWakeup, and it leaves none on return. Lock must not be held on
// entry.
func (s *Session) Next(ctx context.Context, wait time.Duration, buf []Item) ([]Item, error) {
	s.mu.Lock()
	if out, err, ok := s.takeLocked(buf); ok {
		s.mu.Unlock()
		return out, err
	}
	// Waiting is a wake-up like any writer's (SetWakeup) that signals this
	// call; it replaces the writer's, and is removed on return.
	wake := make(chan struct{}, 1)
	s.onWake = func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	defer s.SetWakeup(nil)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-wake:
		case <-timer.C:
			return buf[:0], nil
		case <-ctx.Done():
			return buf[:0], ctx.Err()
		}
		s.mu.Lock()
		out, err, ok := s.takeLocked(buf)
		s.mu.Unlock()
		if ok {
			return out, err
		}
	}
}

// TryNext is Next without the wait: it returns what is queued (possibly
// nothing) or the session's Disconnect once it has failed or closed.
func (s *Session) TryNext(buf []Item) ([]Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err, _ := s.takeLocked(buf)
	return out, err
}

// Pending reports whether TryNext would return something: a queued frame, or
// the end of the session.
func (s *Session) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed || len(s.queue) > 0
}

// SetWakeup makes the session call fn whenever its queue stops being empty
// and when it ends, so a writer need not wait in Next: it can run only when
// there is something to write, and an idle connection holds no writer
// goroutine. fn runs with the session's lock held, on the goroutine that
// queued the frame (for a publication, the hub's fan-out), so it must not
// block or call back into the session; starting a goroutine is what it is
// for. If frames are already queued, or the session has ended, fn is called
// at once.
//
// Lock must not be held on entry; fn runs with it held.
func (s *Session) SetWakeup(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onWake = fn
	if fn != nil && (s.closed || len(s.queue) > 0) {
		fn()
	}
}

// takeLocked hands the queue over to the writer: ok is false when there is
// nothing to hand over (the session is open and its queue empty).
//
// Lock must be held.
func (s *Session) takeLocked(buf []Item) (out []Item, err error, ok bool) {
	if s.closed && !(s.flush && len(s.queue) > 0) {
		return buf[:0], s.reason, true
	}
	if len(s.queue) == 0 {
		return buf[:0], nil, false
	}
	clear(buf)
	out = s.queue
	s.queue, s.queued = buf[:0], 0
	if cap(s.queue) > 1024 { // do not keep a burst's memory for an idle client
		s.queue = nil
	}
	return out, nil, true
}

// Done reports whether the session has failed or closed.
func (s *Session) Done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Reason returns why the session ended, if it has.
func (s *Session) Reason() Disconnect {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Fail ends the session with d: queued frames are dropped and the writer's
// Next or TryNext returns d, so the transport sends it and closes. Safe from
// any goroutine that does not hold the lock (a wake-up must not call it).
func (s *Session) Fail(d Disconnect) { s.fail(d) }

func (s *Session) fail(d Disconnect) {
	s.mu.Lock()
	s.failLocked(d)
	s.mu.Unlock()
}

// failLocked is Fail with the lock held: it may call the wake-up.
//
// Lock must be held.
func (s *Session) failLocked(d Disconnect) {
	if s.closed {
		if s.flush && d != s.reason { // a failure (client gone, write timeout) overrides a kept queue
			s.flush = false
			s.dropQueueLocked()
		}
		return
	}
	s.closed, s.reason = true, d
	s.dropQueueLocked()
	s.signal()
	if d == DisconnectSlow {
		s.node.metrics.SlowClient(s.transport)
	}
}

// dropQueueLocked empties the queue. Lock must be held.
func (s *Session) dropQueueLocked() {
	clear(s.queue)
	s.queue, s.queued = nil, 0
}

// endAfterQueued ends the session with d like fail, except that what is
// already queued is still handed to the writer, before d: the replies and
// errors a client has been sent stay in front of the reason its session ended.
// Nothing more is queued after it.
func (s *Session) endAfterQueued(d Disconnect) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed, s.reason, s.flush = true, d, len(s.queue) > 0
	s.signal()
}

// signal calls the wake-up, which must not block nor take s.mu (see the
// lock graph in doc.go).
//
// Lock must be held.
func (s *Session) signal() {
	if s.onWake != nil {
		s.onWake()
	}
}

// Close releases the session: its subscriptions leave the hub and the node
// forgets it. Transports call it exactly when the connection is gone (it is
// idempotent). d is recorded unless the session had already failed.
//
// Lock must not be held on entry: Close takes the hub's shard locks, the
// broker's and presence's with s.mu released, as the lock graph requires.
func (s *Session) Close(d Disconnect) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.failLocked(d)
	s.ended = true
	subs := s.subs
	s.subs = nil
	reason := s.reason
	var present []string
	var leased []leaseEntry
	for ch, sub := range subs {
		switch {
		case !sub.present || sub.dropped:
		case sub.leased != "":
			leased = append(leased, leaseEntry{ch, sub.leased})
		default:
			present = append(present, ch)
		}
		sub.dropped = true
	}
	info := ClientInfo{s.id, s.user}
	s.mu.Unlock()
	for ch, sub := range subs {
		s.node.hub.remove(ch, s, sub)
	}
	s.leaveAllPresence(info, present)
	s.leaveLeases(info.User, leased, reason)
	s.node.forget(s, reason)
}

// pushLocked queues a frame, counting it against MaxQueueBytes.
// Lock must be held.
func (s *Session) pushLocked(it Item) bool { return s.enqueueLocked(it, true) }

// enqueueLocked queues a frame. Replayed history is not counted against the
// slow-consumer bound: it is bounded by the history size, its frames are
// shared with the broker's history, and counting it would turn a resume with
// a large backlog into a disconnect loop. The bound is for live traffic a
// client does not keep up with.
//
// Lock must be held.
func (s *Session) enqueueLocked(it Item, counted bool) bool {
	if s.closed {
		return false
	}
	if counted {
		s.queued += len(it.Frame) + itemOverhead
	}
	if s.queued > s.node.cfg.Limits.MaxQueueBytes {
		s.failLocked(DisconnectSlow)
		return false
	}
	s.queue = append(s.queue, it)
	if len(s.queue) == 1 {
		s.signal()
	}
	return true
}

// deliver is the fan-out hot path: called by the hub for each live
// publication to sub, in offset order per channel. It never blocks: under
// s.mu it only appends and, on a queue that was empty, calls the wake-up.
//
// Lock must not be held on entry; the caller holds a hub shard read lock
// and the broker's delivery lock.
func (s *Session) deliver(sub *subscription, p *Publication) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub.dropped || s.closed {
		return
	}
	if sub.buffering {
		sub.buf = append(sub.buf, p)
		return
	}
	s.advanceLocked(sub, p, true)
}

// advanceLocked queues p if it is the next offset; drops it if already seen;
// and fails the session on a gap, so the client resumes from history rather
// than silently missing messages. live says whether p counts against the
// slow-consumer bound (see enqueueLocked). The metrics call is a counter.
//
// Lock must be held.
func (s *Session) advanceLocked(sub *subscription, p *Publication, live bool) {
	switch {
	case p.Epoch == sub.epoch && p.Offset <= sub.offset:
		return // duplicate
	case p.Epoch != sub.epoch || p.Offset != sub.offset+1:
		s.failLocked(DisconnectInsufficientState)
		return
	}
	sub.offset = p.Offset
	if s.enqueueLocked(Item{Frame: p.Frame(), Channel: p.Channel, Position: p.Position()}, live) {
		s.node.metrics.Delivered(s.transport)
	}
}

// SubscribeRequest asks for a subscription, optionally resuming from Since.
type SubscribeRequest struct {
	ID      uint64    // the command id, echoed in the subscribed frame
	Channel string    // the channel
	Since   *Position // resume after this position; nil for a fresh subscription
	Token   string    // a per-subscription token, if the transport carries one
	// Quiet leaves out the subscribed frame when Since was fully recovered
	// (long-polling resumes on every request and has nothing to announce).
	Quiet bool
}

// Subscribe subscribes the session and queues the `subscribed` frame, the
// replayed history when Since is set, and then live publications, with no gap
// and no duplicate between replay and live.
//
// Lock must not be held on entry: the hub and the broker are called with
// s.mu released.
func (s *Session) Subscribe(ctx context.Context, req SubscribeRequest) error {
	n := s.node
	ch := req.Channel
	if err := ValidateChannel(ch); err != nil {
		n.limited(LimitChannelName)
		return err
	}
	if err := validatePosition(req.Since); err != nil {
		return err
	}
	if err := n.authorizeSubscribe(s, ch, req.Token); err != nil {
		return channelError(ch, err)
	}
	if user, client, ordered := s.orderedAway(); ordered {
		// The order may have come while the client's last poll was being
		// answered, before that poll started its lease: end it here too.
		if expire := n.leases.endOrdered(n, user, client, time.Now()); expire != nil {
			expire()
		}
		s.fail(DisconnectByServer)
		return ErrClosed
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.subs[ch] != nil:
		s.mu.Unlock()
		return channelError(ch, ErrAlreadySubscribed)
	case len(s.subs) >= n.cfg.Limits.MaxChannels:
		s.mu.Unlock()
		n.limited(LimitChannels)
		return &Error{429, "too many channels"}
	}
	if s.subs == nil {
		s.subs = make(map[string]*subscription)
	}
	sub := &subscription{buffering: true, since: time.Now().UnixMilli()}
	s.subs[ch] = sub
	s.mu.Unlock()

	if err := n.hub.add(ctx, ch, s, sub); err != nil {
		s.dropSub(ch, sub)
		if ctx.Err() != nil { // the client left while subscribing: nothing failed
			return ErrClosed
		}
		return channelError(ch, n.brokerFailed("subscribe", ch, err))
	}
	s.mu.Lock()
	closed, gone := s.closed, s.subs[ch] != sub
	s.mu.Unlock()
	if closed || gone { // Close or Unsubscribe ran meanwhile and may have missed the hub entry.
		n.hub.remove(ch, s, sub)
		if gone && !closed {
			return channelError(ch, &Error{409, "unsubscribed while subscribing"})
		}
		return ErrClosed
	}
	if err := s.enterPresence(ctx, ch, sub); err != nil {
		s.dropSub(ch, sub)
		n.hub.remove(ch, s, sub)
		return channelError(ch, err)
	}
	res, err := n.broker.History(ctx, ch, HistoryQuery{Since: req.Since, Limit: -1})
	var from *Position // replay after this position; nil for none
	if err == nil && req.Since != nil {
		if res.Recoverable {
			from = req.Since
		} else if req.Since.Epoch != res.Top.Epoch {
			// The client's history is gone (a restart, an eviction). What
			// the new epoch holds from its start still reaches the client,
			// after the recovered:false that says the old tail was lost.
			start := &Position{Epoch: res.Top.Epoch}
			if fresh, ferr := n.broker.History(ctx, ch, HistoryQuery{Since: start, Limit: -1}); ferr == nil && fresh.Recoverable {
				res, from = fresh, start
			}
		}
	}
	if err != nil {
		s.leavePresence(ch, s.dropSub(ch, sub), sub.leased)
		n.hub.remove(ch, s, sub)
		return channelError(ch, n.brokerFailed("history", ch, err)) // Redis starts a channel on reading
	}
	s.finishSubscribe(req, sub, res, from)
	return nil
}

// finishSubscribe queues the subscribed frame and the replay of the
// publications after from (nil: none), then switches the subscription to
// live delivery, releasing what arrived meanwhile. The subscription is
// recovered when from is the client's own position.
//
// Lock must not be held on entry.
func (s *Session) finishSubscribe(req SubscribeRequest, sub *subscription, res HistoryResult, from *Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.subs[req.Channel] != sub {
		return
	}
	recovered := req.Since != nil && from == req.Since
	start := res.Top // where the stream continues from, as announced
	if from != nil {
		start = *from
	}
	sub.epoch, sub.offset = start.Epoch, start.Offset
	if !(req.Quiet && recovered) {
		f := subscribedFrame{Type: "subscribed", ID: req.ID, Channel: req.Channel, Epoch: start.Epoch, Offset: start.Offset}
		if req.Since != nil {
			f.Recovered = &recovered
		}
		if !s.pushLocked(Item{Frame: mustJSON(f), Channel: req.Channel, Position: start}) {
			return
		}
	}
	if from != nil {
		for _, p := range res.Publications {
			s.advanceLocked(sub, p, false)
		}
	}
	buf := sub.buf
	sub.buf, sub.buffering = nil, false
	for _, p := range buf {
		s.advanceLocked(sub, p, true)
	}
}

// dropSub takes sub out of the session and reports whether it had a
// presence entry, which the caller removes. Lock must not be held on entry.
func (s *Session) dropSub(ch string, sub *subscription) (present bool) {
	s.mu.Lock()
	if s.subs[ch] == sub {
		delete(s.subs, ch)
	}
	present = sub.present && !sub.dropped
	sub.dropped = true
	s.mu.Unlock()
	return present
}

// Unsubscribe removes the session's subscription to ch. Lock must not be
// held on entry.
func (s *Session) Unsubscribe(ch string) error {
	return s.unsubscribe(ch, 0)
}

// unsubscribe is Unsubscribe; with by (Unix milliseconds) set, only of a
// subscription begun no later than by (a poll's: whose client connected by
// then, as its subscriptions are made again at every poll), checked and
// taken out under one lock. Lock must not be held on entry.
func (s *Session) unsubscribe(ch string, by int64) error {
	s.mu.Lock()
	sub := s.subs[ch]
	if sub != nil && by != 0 {
		if s.pollClient != "" && !s.existedByLocked(by) || s.pollClient == "" && sub.since > by {
			sub = nil
		}
	}
	present, leased := false, ""
	if sub != nil {
		present, leased = sub.present && !sub.dropped, sub.leased
		sub.dropped = true
		delete(s.subs, ch)
	}
	s.mu.Unlock()
	if sub == nil {
		return channelError(ch, &Error{404, "not subscribed"})
	}
	s.node.hub.remove(ch, s, sub)
	s.leavePresence(ch, present, leased)
	return nil
}

// newID returns a session id: 24 URL-safe characters holding the time it
// was made, in milliseconds (6 bytes), and 12 random bytes. A long-poll
// client's later polls claim their presence entry with the id of its first
// poll (PollPresence); the id's time tells whether a disconnect order came
// after that first poll (see disconnectOrders).
func newID() string {
	var raw [18]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		raw[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(raw[6:]) // never fails: crypto/rand crashes the program instead
	return b64.EncodeToString(raw[:])
}

// existedBy reports whether the session's client connected no later than
// at's millisecond: for a poll, when its client was given the id its polls
// claim with (each poll is a session of its own); else when the session
// was made. A time that is not known counts as before. Lock must not be
// held on entry.
func (s *Session) existedBy(at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.existedByLocked(at.UnixMilli())
}

// existedByLocked is existedBy with the lock held, at in Unix milliseconds.
func (s *Session) existedByLocked(at int64) bool {
	if s.pollClient != "" {
		return s.pollIssued.IsZero() || s.pollIssued.UnixMilli() <= at
	}
	made, ok := idTime(s.id)
	return !ok || made.UnixMilli() <= at
}

// idTime is the time newID made id at; false for anything newID does not
// make (an id from a version before ids held their time, a made-up one).
func idTime(id string) (time.Time, bool) {
	var raw [18]byte
	if len(id) != 24 {
		return time.Time{}, false
	}
	if n, err := b64.Decode(raw[:], []byte(id)); err != nil || n != len(raw) {
		return time.Time{}, false
	}
	var ms int64
	for _, b := range raw[:6] {
		ms = ms<<8 | int64(b)
	}
	return time.UnixMilli(ms), true
}

// randomText returns n random bytes as unpadded URL-safe base64.
func randomText(n int) string {
	raw := make([]byte, n)
	_, _ = rand.Read(raw) // never fails: crypto/rand crashes the program instead
	return b64.EncodeToString(raw)
}
