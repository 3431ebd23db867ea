package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// ClientInfo is one presence entry: a session subscribed to a channel, and
// the user its connection token named ("" for anonymous clients).
type ClientInfo struct {
	Client string `json:"client"`
	User   string `json:"user"`
}

// PresenceStats counts a channel's presence entries and their distinct users
// (anonymous clients count as one user, "").
type PresenceStats struct {
	Clients int `json:"clients"`
	Users   int `json:"users"`
}

// PresenceOptions are the limits of one presence change, from Config.
type PresenceOptions struct {
	// Max is the most entries a channel may hold; AddPresence refuses a new
	// client beyond it with ErrPresenceFull.
	Max int
	// Notify announces the change (a join or leave frame to every
	// subscriber, on every node) only while the channel holds at most this
	// many entries, counting the one that joined or left; 0 never announces.
	Notify int
}

// ErrPresenceFull refuses a subscription that would take a channel's
// presence over Config.MaxPresence.
var ErrPresenceFull = &Error{429, "channel presence is full"}

// Presencer is a Broker that keeps presence: who is subscribed to a channel,
// on every node sharing the broker. Brokers that implement it serve
// namespaces with "presence": true. Entries of a node that dies leave within
// a bounded time the broker documents.
type Presencer interface {
	// AddPresence records info in ch's presence (replacing an entry of the
	// same client) and returns the number of entries after it. When
	// opts.Notify allows, it delivers a join to every node subscribed to ch
	// (BrokerHandler's JoinLeaveHandler), after the entry is in place.
	AddPresence(ctx context.Context, ch string, info ClientInfo, opts PresenceOptions) (int, error)
	// RemovePresence removes client's entry and, if there was one and
	// opts.Notify allows, delivers a leave. Removing an absent client does
	// nothing.
	RemovePresence(ctx context.Context, ch string, info ClientInfo, opts PresenceOptions) error
	// Presence returns ch's entries, in no particular order.
	Presence(ctx context.Context, ch string) ([]ClientInfo, error)
	// PresenceStats counts ch's entries and distinct users.
	PresenceStats(ctx context.Context, ch string) (PresenceStats, error)
}

// PresenceBatchRemover is a Presencer that removes a client's entries in
// several channels at once (one round trip): a closing session leaves all
// its channels with one call, bounded by one timeout. Entries it fails to
// remove are the broker's to retry, as for RemovePresence.
type PresenceBatchRemover interface {
	RemovePresences(ctx context.Context, info ClientInfo, chans []string, opts func(ch string) PresenceOptions) error
}

// PresenceCounter is a Presencer that counts a channel's entries without
// reading them; the presence command checks its cap with it.
type PresenceCounter interface {
	PresenceCount(ctx context.Context, ch string) (int, error)
}

// JoinLeave is a join or leave event. It is not a publication: it has no
// offset, is kept in no history and is never recovered.
type JoinLeave struct {
	Type    string // "join" or "leave"
	Channel string
	ClientInfo

	frame atomic.Pointer[[]byte]
}

type joinLeaveFrame struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Client  string `json:"client"`
	User    string `json:"user"`
}

// Frame returns the event's frame, encoded once for every subscriber.
func (j *JoinLeave) Frame() []byte {
	if f := j.frame.Load(); f != nil {
		return *f
	}
	f := mustJSON(joinLeaveFrame{j.Type, j.Channel, j.Client, j.User})
	j.frame.Store(&f)
	return f
}

// JoinLeaveHandler is implemented by the BrokerHandler a Node installs; a
// Presencer hands it the join and leave events of channels this node is
// subscribed to.
type JoinLeaveHandler interface {
	HandleJoinLeave(ev *JoinLeave)
}

// Control is a backend's order about live connections, carried to every
// node: Op "disconnect" ends every session of User (only the session Client
// when set); Op "unsubscribe" ends User's subscriptions to Channel.
type Control struct {
	Op      string `json:"op"`
	User    string `json:"user"`
	Client  string `json:"client,omitempty"`
	Channel string `json:"channel,omitempty"`
	// At is when the order was given, in Unix milliseconds, by the node
	// that gave it: every node remembers a disconnect order with this time
	// (see disconnectOrders), not with when the order reached it, so a
	// node that gets it late does not end clients that connected after it.
	// Zero (an order from an older node): when it is carried out.
	At int64 `json:"at,omitempty"`
	// ID is the order's id in the broker's log of recent orders, if it
	// keeps one (the Redis broker does), so that a node carries out each
	// order once however it reached it.
	ID string `json:"id,omitempty"`
	// Late is set by a broker that hands the node an order from its log,
	// because its live delivery missed the node (cut off from the broker
	// when it was given, or started since). A late order applies only to
	// what already existed at At: sessions made, and subscriptions begun,
	// no later than its millisecond.
	Late bool `json:"-"`
}

// The Control operations.
const (
	ControlDisconnect  = "disconnect"
	ControlUnsubscribe = "unsubscribe"
)

// Cluster is a Broker shared by several nodes. The node then sends Control
// orders through it (each node, this one included, runs them on its own
// sessions) and asks it for the channels other nodes hold.
type Cluster interface {
	// SetClusterHandler sets who runs the orders and reports this node's
	// channels. The node calls it once, before any other call.
	SetClusterHandler(h ClusterHandler)
	// Control delivers c to every node, this one included.
	Control(ctx context.Context, c Control) error
	// Channels returns the channels with subscribers on any node, and how
	// many, by the nodes' latest reports (see the broker's documentation
	// for how fresh they are).
	Channels(ctx context.Context, prefix string) (map[string]int, error)
}

// ClusterHandler is the node's side of a Cluster.
type ClusterHandler interface {
	// HandleControl runs c on this node's sessions.
	HandleControl(c Control)
	// LocalChannels counts this node's subscribers per channel.
	LocalChannels(prefix string) map[string]int
}

// Presence defaults (Config.MaxPresence, Config.JoinLeaveLimit,
// Config.MaxPresenceListed).
const (
	DefaultMaxPresence       = 10000
	DefaultJoinLeaveLimit    = 1000
	DefaultMaxPresenceListed = 1000
)

// LimitPresence counts subscriptions refused by Config.MaxPresence.
const LimitPresence = "presence"

// presenceTimeout bounds a presence change made for a session (its
// subscribe or its end), whatever the context of the caller.
const presenceTimeout = 5 * time.Second

// UnsubscribedByServer is the code of the `unsubscribed` frame that ends a
// subscription a backend ended (POST /api/unsubscribe). The client does not
// subscribe again on its own.
const UnsubscribedByServer = 2000

type unsubscribedFrame struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
}

type presenceReply struct {
	Type    string       `json:"type"`
	ID      uint64       `json:"id,omitempty"`
	Channel string       `json:"channel"`
	Clients []ClientInfo `json:"clients"`
}

type presenceStatsReply struct {
	Type    string `json:"type"`
	ID      uint64 `json:"id,omitempty"`
	Channel string `json:"channel"`
	PresenceStats
}

// validatePresence checks the namespaces' presence options against the
// broker, so a configuration the broker cannot serve fails at start.
func validatePresence(c *Config) error {
	if c.MaxPresence < 0 || c.JoinLeaveLimit < 0 || c.MaxPresenceListed < 0 {
		return errors.New("session: negative presence limits")
	}
	if c.PollLease < 0 {
		return errors.New("session: negative poll lease")
	}
	// Zero (negatives were refused above) means the default.
	c.MaxPresenceListed = cmp.Or(c.MaxPresenceListed, DefaultMaxPresenceListed)
	c.MaxPresence = cmp.Or(c.MaxPresence, DefaultMaxPresence)
	c.JoinLeaveLimit = cmp.Or(c.JoinLeaveLimit, DefaultJoinLeaveLimit)
	c.PollLease = cmp.Or(c.PollLease, DefaultPollLease)
	_, presencer := c.Broker.(Presencer)
	for _, ns := range c.Namespaces {
		if ns.JoinLeave && !ns.Presence {
			return fmt.Errorf("session: namespace %q: joinLeave needs presence", ns.Name)
		}
		if ns.Presence && !presencer {
			return fmt.Errorf("session: namespace %q: the broker does not keep presence", ns.Name)
		}
	}
	return nil
}

func (n *Node) presencer(ch string) (Presencer, error) {
	if !n.Namespace(ch).Presence {
		return nil, channelError(ch, &Error{403, "presence is not enabled in this namespace"})
	}
	p, ok := n.broker.(Presencer)
	if !ok { // Validate refuses this configuration
		return nil, ErrUnavailable
	}
	return p, nil
}

func (n *Node) presenceOptions(ch string) PresenceOptions {
	o := PresenceOptions{Max: n.cfg.MaxPresence}
	if n.Namespace(ch).JoinLeave {
		o.Notify = n.cfg.JoinLeaveLimit
	}
	return o
}

// Presence returns who is subscribed to ch, on every node, sorted by client.
func (n *Node) Presence(ctx context.Context, ch string) ([]ClientInfo, error) {
	if err := ValidateChannel(ch); err != nil {
		return nil, err
	}
	p, err := n.presencer(ch)
	if err != nil {
		return nil, err
	}
	out, err := p.Presence(ctx, ch)
	if err != nil {
		n.log.Warn("broker presence failed", "channel", ch, "err", err)
		return nil, ErrUnavailable
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Client < out[j].Client })
	return out, nil
}

// PresenceStats counts who is subscribed to ch, on every node.
func (n *Node) PresenceStats(ctx context.Context, ch string) (PresenceStats, error) {
	if err := ValidateChannel(ch); err != nil {
		return PresenceStats{}, err
	}
	p, err := n.presencer(ch)
	if err != nil {
		return PresenceStats{}, err
	}
	st, err := p.PresenceStats(ctx, ch)
	if err != nil {
		n.log.Warn("broker presence stats failed", "channel", ch, "err", err)
		return PresenceStats{}, ErrUnavailable
	}
	return st, nil
}

// ChannelCount is a channel and its number of subscribers.
type ChannelCount struct {
	Channel     string `json:"channel"`
	Subscribers int    `json:"subscribers"`
}

// MaxChannelsListed bounds the answer of Channels.
const MaxChannelsListed = 10000

// maxChannelsListed is MaxChannelsListed, lowered by tests.
var maxChannelsListed = MaxChannelsListed

// Channels returns the channels starting with prefix that have subscribers,
// on every node when the broker is a Cluster, sorted by name; at most
// MaxChannelsListed of them, and truncated says whether more were left out.
func (n *Node) Channels(ctx context.Context, prefix string) (out []ChannelCount, truncated bool, err error) {
	return n.ChannelsMatching(ctx, prefix, nil)
}

// ChannelsMatching is Channels restricted to the channels keep accepts
// (all when keep is nil). The filter runs before the list is cut to
// MaxChannelsListed, so a caller that may see only some channels gets up to
// MaxChannelsListed of those, not a share of the first ones overall.
func (n *Node) ChannelsMatching(ctx context.Context, prefix string, keep func(ch string) bool) (out []ChannelCount, truncated bool, err error) {
	counts, err := n.ChannelCounts(ctx, prefix)
	if err != nil {
		return nil, false, err
	}
	out = make([]ChannelCount, 0, len(counts))
	for ch, k := range counts {
		if k > 0 && (keep == nil || keep(ch)) {
			out = append(out, ChannelCount{ch, k})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	if len(out) > maxChannelsListed {
		out, truncated = out[:maxChannelsListed], true
	}
	return out, truncated, nil
}

// ChannelCounts returns what Channels lists, unsorted and whole: every
// channel starting with prefix and its subscribers, on every node when the
// broker is a Cluster (by the nodes' latest reports), on this node
// otherwise. Entries may be 0 (a channel whose last subscriber just left);
// Channels leaves those out. The map is the caller's.
func (n *Node) ChannelCounts(ctx context.Context, prefix string) (map[string]int, error) {
	if c, ok := n.broker.(Cluster); ok {
		// The cluster's report includes this node's live counts.
		counts, err := c.Channels(ctx, prefix)
		if err != nil {
			n.log.Warn("broker channels failed", "err", err)
			return nil, ErrUnavailable
		}
		return counts, nil
	}
	return n.hub.channels(prefix), nil
}

// Disconnect ends every session of user (only the session client when it
// is set) with DisconnectByServer, on every node.
func (n *Node) Disconnect(ctx context.Context, user, client string) error {
	if user == "" {
		return badRequest("user is required")
	}
	return n.control(ctx, Control{Op: ControlDisconnect, User: user, Client: client, At: time.Now().UnixMilli()})
}

// UnsubscribeUser ends user's subscriptions to ch on every node; each
// session is sent an `unsubscribed` frame.
func (n *Node) UnsubscribeUser(ctx context.Context, user, ch string) error {
	if user == "" {
		return badRequest("user is required")
	}
	if err := ValidateChannel(ch); err != nil {
		return err
	}
	return n.control(ctx, Control{Op: ControlUnsubscribe, User: user, Channel: ch, At: time.Now().UnixMilli()})
}

func (n *Node) control(ctx context.Context, c Control) error {
	cl, ok := n.broker.(Cluster)
	if !ok {
		n.runControl(c, false)
		return nil
	}
	if err := cl.Control(ctx, c); err != nil {
		n.log.Warn("broker control failed", "op", c.Op, "err", err)
		return ErrUnavailable
	}
	return nil
}

// runControl carries out c on this node's sessions. With async, each
// session's unsubscribe runs on its own goroutine: the caller is then the
// broker's control receiver, and the presence removal may wait for the
// broker (a hang), which must not hold up the orders behind this one.
func (n *Node) runControl(c Control, async bool) {
	at := time.Now()
	if c.At > 0 {
		at = time.UnixMilli(c.At)
	}
	if c.Op == ControlDisconnect {
		// Before the sessions: a poll opening meanwhile finds the order.
		n.orders.record(c.User, c.Client, at, time.Now())
		// The leased entries of pollers between polls leave now.
		switch expire := n.leases.endOrdered(n, c.User, c.Client, at); {
		case expire == nil: // no lease ended: no broker call, no goroutine
		case async:
			go expire()
		default:
			expire()
		}
	}
	match := n.sessionsOf(c.User)
	if c.Client != "" { // a long-poll client is named by its presence id
		kept := match[:0]
		for _, s := range match {
			if s.listedAs(c.Client) {
				kept = append(kept, s)
			}
		}
		match = kept
	}
	for _, s := range match {
		if s.User() != c.User {
			continue
		}
		switch c.Op {
		case ControlDisconnect:
			if c.Late && !s.existedBy(at) {
				continue
			}
			s.fail(DisconnectByServer)
		case ControlUnsubscribe:
			by := int64(0) // a live order: whatever the session holds now
			if c.Late {
				by = at.UnixMilli()
			}
			unsubscribe := func() {
				if s.unsubscribe(c.Channel, by) == nil {
					s.Send(mustJSON(unsubscribedFrame{"unsubscribed", c.Channel, UnsubscribedByServer, "unsubscribed by the server"}))
				}
			}
			if async {
				go unsubscribe()
			} else {
				unsubscribe()
			}
		}
	}
}

func (h brokerHandler) HandleJoinLeave(ev *JoinLeave) { h.n.hub.joinLeave(ev) }
func (h brokerHandler) HandleControl(c Control)       { h.n.runControl(c, true) }
func (h brokerHandler) LocalChannels(prefix string) map[string]int {
	return h.n.hub.channels(prefix)
}

// SkipPresence keeps the session out of presence and join/leave (a
// long-poll session is listed through PollPresence instead). Call it before
// the first Subscribe.
func (s *Session) SkipPresence() {
	s.mu.Lock()
	s.noPresence = true
	s.mu.Unlock()
}

// enterPresence adds the session to ch's presence when its namespace keeps
// presence; sub is marked present unless it left meanwhile, in which case
// the entry is removed again (Close and Unsubscribe remove present ones).
func (s *Session) enterPresence(ctx context.Context, ch string, sub *subscription) error {
	n := s.node
	if !n.Namespace(ch).Presence {
		return nil
	}
	s.mu.Lock()
	skip, info, pollClient := s.noPresence, ClientInfo{s.id, s.user}, s.pollClient
	s.mu.Unlock()
	if skip {
		return nil
	}
	p, _ := n.broker.(Presencer)
	if p == nil {
		return nil
	}
	l, _ := p.(PresenceLeaser)
	if pollClient != "" && l == nil {
		return nil // a broker without leases leaves long-poll clients out
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), presenceTimeout)
	defer cancel()
	opts := n.presenceOptions(ch)
	var err error
	if pollClient != "" {
		info.Client, err = s.enterLease(pctx, l, ch, pollClient, info.User, opts)
	} else {
		_, err = p.AddPresence(pctx, ch, info, opts)
	}
	if err != nil {
		if errors.Is(err, ErrPresenceFull) {
			n.limited(LimitPresence)
			return ErrPresenceFull
		}
		n.log.Warn("broker presence add failed", "channel", ch, "err", err)
		return ErrUnavailable
	}
	s.mu.Lock()
	gone := s.subs[ch] != sub || sub.dropped
	if !gone {
		sub.present = true
		if pollClient != "" {
			sub.leased = info.Client
		}
	}
	s.mu.Unlock()
	if gone && pollClient != "" {
		_ = l.ExpirePresence(pctx, ch, info, s.id, opts)
	} else if gone {
		_ = p.RemovePresence(pctx, ch, info, opts)
	}
	return nil
}

// leavePresence removes the session's entry from ch's presence if sub made
// one. The caller has taken sub out of the session, under its lock, and
// read sub.present there. A long-poll client's entry (leased) leaves at
// once too: the subscription ended, not just the poll.
func (s *Session) leavePresence(ch string, present bool, leased string) {
	if !present {
		return
	}
	p, _ := s.node.broker.(Presencer)
	if p == nil {
		return
	}
	if _, ok := p.(PresenceLeaser); ok && leased != "" {
		s.node.leases.hold(ch, leased)
		s.node.expireLease(ch, ClientInfo{leased, s.User()}, s.id)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	if err := p.RemovePresence(ctx, ch, ClientInfo{s.id, s.User()}, s.node.presenceOptions(ch)); err != nil {
		s.node.log.Warn("broker presence remove failed", "channel", ch, "err", err)
	}
}

// leaveAllPresence removes the closing session's entries from the
// channels in chans, under one presenceTimeout for them all rather than
// one each: during a broker hang, a session in k channels blocks its
// transport (and a shutdown's drain) at most presenceTimeout, not k times
// it.
func (s *Session) leaveAllPresence(info ClientInfo, chans []string) {
	if len(chans) == 0 {
		return
	}
	p, _ := s.node.broker.(Presencer)
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	if b, ok := p.(PresenceBatchRemover); ok {
		if err := b.RemovePresences(ctx, info, chans, s.node.presenceOptions); err != nil {
			s.node.log.Warn("broker presence remove failed", "channels", len(chans), "err", err)
		}
		return
	}
	for _, ch := range chans {
		if err := p.RemovePresence(ctx, ch, info, s.node.presenceOptions(ch)); err != nil {
			s.node.log.Warn("broker presence remove failed", "channel", ch, "err", err)
		}
	}
}

// deliverEvent queues a join or leave frame on a subscription. Not a
// publication: the position does not move, and one that arrives while the
// subscription replays history goes out at once (it may precede the
// subscribed frame) rather than being held or lost.
func (s *Session) deliverEvent(sub *subscription, frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub.dropped || s.closed {
		return
	}
	s.pushLocked(Item{Frame: frame})
}

// joinLeave hands a join or leave to every local subscriber of its channel
// but the client it is about.
func (h *hub) joinLeave(ev *JoinLeave) int {
	sh := h.shard(ev.Channel)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	c := sh.chans[ev.Channel]
	if c == nil {
		return 0
	}
	k := 0
	for s, sub := range c.subs {
		// pollClient is set before the session's first subscribe.
		if s.id == ev.Client || s.pollClient == ev.Client {
			continue
		}
		s.deliverEvent(sub, ev.Frame())
		k++
	}
	return k
}

// channels counts local subscribers per channel starting with prefix.
func (h *hub) channels(prefix string) map[string]int {
	out := make(map[string]int)
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for ch, c := range sh.chans {
			if strings.HasPrefix(ch, prefix) && len(c.subs) > 0 {
				out[ch] = len(c.subs)
			}
		}
		sh.mu.RUnlock()
	}
	return out
}

// presenceCommand answers the presence and presence_stats commands. A
// session may only ask about a channel it is subscribed to, in a namespace
// that keeps presence.
func (s *Session) presenceCommand(ctx context.Context, c *Command) []byte {
	if err := ValidateChannel(c.Channel); err != nil {
		return ErrorFrame(c.ID, err)
	}
	s.mu.Lock()
	subscribed := s.subs[c.Channel] != nil
	s.mu.Unlock()
	if !subscribed {
		return ErrorFrame(c.ID, channelError(c.Channel, &Error{403, "subscribe to the channel first"}))
	}
	if c.Type == "presence_stats" {
		st, err := s.node.PresenceStats(ctx, c.Channel)
		if err != nil {
			return ErrorFrame(c.ID, err)
		}
		return mustJSON(presenceStatsReply{"reply", c.ID, c.Channel, st})
	}
	// The list is capped: at MaxPresence 10,000 one answer is ~0.7 MB, a
	// few of them overflow MaxQueueBytes, and on Redis each is an HGETALL of
	// the whole hash. Count first (HLEN), list only below the cap.
	limit := s.node.cfg.MaxPresenceListed
	tooMany := channelError(c.Channel, &Error{413, fmt.Sprintf("presence has more than %d clients: use presence_stats, or GET /api/presence from the backend", limit)})
	if pc, ok := s.node.broker.(PresenceCounter); ok && s.node.Namespace(c.Channel).Presence {
		k, err := pc.PresenceCount(ctx, c.Channel)
		if err != nil {
			s.node.log.Warn("broker presence count failed", "channel", c.Channel, "err", err)
			return ErrorFrame(c.ID, ErrUnavailable)
		}
		if k > limit {
			return ErrorFrame(c.ID, tooMany)
		}
	}
	list, err := s.node.Presence(ctx, c.Channel)
	if err != nil {
		return ErrorFrame(c.ID, err)
	}
	if len(list) > limit { // grew since the count, or no counter
		return ErrorFrame(c.ID, tooMany)
	}
	return mustJSON(presenceReply{"reply", c.ID, c.Channel, list})
}
