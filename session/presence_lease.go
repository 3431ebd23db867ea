package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Long-poll presence. A long-poll client opens a session per poll, so its
// presence entry is not the session's: the client's first poll was given a
// session id (the hello's "session"), which the client sends back on every
// later poll as its claim. The entry is keyed by a digest of that id
// (PollClientID, the hello's "client") and kept by a lease between polls.
// Each poll refreshes the entry (no join: the client is already listed); when a
// poll ends, a lease of Config.PollLease starts, and the entry leaves (with
// a leave) if no poll refreshed it by then. A refresh stores the poll's
// session id as the entry's stamp, and the lease removes the entry only if
// the stamp is still the one it was started with: a poll that went to
// another node (Redis) in the meantime keeps the entry.

// DefaultPollLease is Config.PollLease's default: the transports' default
// poll timeout (25 s) and 10 s of grace for the client's next poll.
const DefaultPollLease = 35 * time.Second

// ErrPresenceTaken is returned by PresenceLeaser.RefreshPresence when the
// entry of the claimed client id belongs to another user: it is left alone.
var ErrPresenceTaken = errors.New("session: the presence entry belongs to another user")

// PresenceLeaser is a Presencer that keeps the entries of long-poll
// clients. Brokers without it leave long-poll clients out of presence.
type PresenceLeaser interface {
	// RefreshPresence adds info's entry, or refreshes the one info.Client
	// has: its stamp becomes stamp. A join is delivered only for a new
	// entry. If the entry exists with another user, nothing changes and it
	// returns ErrPresenceTaken. It returns the number of entries.
	RefreshPresence(ctx context.Context, ch string, info ClientInfo, stamp string, opts PresenceOptions) (int, error)
	// ExpirePresence removes info.Client's entry, delivering a leave as
	// RemovePresence does, only if its stamp is still stamp (no refresh
	// since). Removing an absent or refreshed entry does nothing.
	ExpirePresence(ctx context.Context, ch string, info ClientInfo, stamp string, opts PresenceOptions) error
}

// maxPollClientLen bounds the client id a poll may claim; ids the server
// hands out (newID) are 24 characters.
const maxPollClientLen = 64

// ValidPollClient reports whether id may be claimed as a long-poll client
// id: 1 to 64 URL-safe base64 characters, the alphabet of session ids.
func ValidPollClient(id string) bool {
	if id == "" || len(id) > maxPollClientLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// PollPresence makes s one poll of a long-poll client: its presence
// entries are those of the client that claim names (the session id an
// earlier poll's hello gave the client; an invalid or empty claim is
// ignored and s's own id is used), kept between polls by a lease. Call it
// before the first Subscribe.
//
// The entry is listed under PollClientID(claim), not under the claim: the
// claim is the client's secret. Presence, join and leave show every
// subscriber the listed ids, and an anonymous client is told apart from
// another by nothing else, so a listed id that could be claimed would let
// any subscriber keep another's entry alive, or end it.
func (s *Session) PollPresence(claim string) {
	if !ValidPollClient(claim) {
		claim = s.id
	}
	client := PollClientID(claim)
	issued, _ := idTime(claim) // unknown: before any order
	s.mu.Lock()
	s.pollClient, s.pollIssued = client, issued
	s.mu.Unlock()
}

// listedAs reports whether presence lists s as client: its session id, a
// long-poll client's id, or the id of an entry of its own that a poll got
// when its claimed entry was another user's (enterLease). Lock must not be
// held on entry.
func (s *Session) listedAs(client string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id == client || s.pollClient == client {
		return true
	}
	for _, sub := range s.subs {
		if sub.leased == client {
			return true
		}
	}
	return false
}

// orderedAway reports whether s is a poll of a long-poll client that a
// disconnect order ended while it was between two polls (see
// disconnectOrders), with the client's user and id. Lock must not be held
// on entry.
func (s *Session) orderedAway() (user, client string, ordered bool) {
	s.mu.Lock()
	client, issued, user := s.pollClient, s.pollIssued, s.user
	s.mu.Unlock()
	return user, client, client != "" && s.node.orders.after(user, client, issued, time.Now())
}

// PollClientID is the id presence lists a long-poll client under, given the
// session id of its first poll: the first 96 bits of a SHA-256 of it, in
// the alphabet of session ids. Every node derives the same id, and nobody
// who reads it can find the session id that claims it.
func PollClientID(claim string) string {
	sum := sha256.Sum256([]byte("waterspout poll client\x00" + claim))
	return b64.EncodeToString(sum[:12])
}

// PresenceClient returns the client id of s's presence entries: the
// long-poll client's (see PollPresence), else s's id.
func (s *Session) PresenceClient() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pollClient != "" {
		return s.pollClient
	}
	return s.id
}

// enterLease refreshes the poll's leased entry in ch. A claimed id whose
// entry is another user's is not taken over: the poll gets an entry of its
// own, under the id its own session id claims. It returns the client id of
// the entry.
func (s *Session) enterLease(ctx context.Context, l PresenceLeaser, ch string, client, user string, opts PresenceOptions) (string, error) {
	_, err := l.RefreshPresence(ctx, ch, ClientInfo{client, user}, s.id, opts)
	if errors.Is(err, ErrPresenceTaken) {
		if own := PollClientID(s.id); client != own {
			client = own
			_, err = l.RefreshPresence(ctx, ch, ClientInfo{client, user}, s.id, opts)
		}
	}
	if err == nil {
		// After the refresh: a lease that ends in between finds the
		// entry's stamp changed and leaves it. On failure the running
		// lease still removes the entry it kept.
		s.node.leases.hold(ch, client)
	}
	return client, err
}

// leaseEntry is a leased entry a closing poll leaves behind.
type leaseEntry struct {
	ch, client string
}

// leaveLeases starts the lease of each of the closing poll's entries, or,
// when the poll ended for good (a terminal disconnect: the client does not
// poll again), removes them at once.
func (s *Session) leaveLeases(user string, entries []leaseEntry, d Disconnect) {
	if len(entries) == 0 { // none without a PresenceLeaser (enterPresence)
		return
	}
	terminal := d.Code >= 3500
	s.mu.Lock()
	issued := s.pollIssued
	s.mu.Unlock()
	for _, e := range entries {
		info := ClientInfo{e.client, user}
		if terminal {
			s.node.expireLease(e.ch, info, s.id)
			continue
		}
		s.node.leases.start(s.node, e.ch, info, issued, s.id)
	}
}

// expireLease removes a leased entry unless a poll refreshed it since stamp.
// Leased entries exist only on a broker that is a PresenceLeaser.
func (n *Node) expireLease(ch string, info ClientInfo, stamp string) {
	l, ok := n.broker.(PresenceLeaser)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	if err := l.ExpirePresence(ctx, ch, info, stamp, n.presenceOptions(ch)); err != nil {
		n.log.Warn("broker presence expiry failed", "channel", ch, "err", err)
	}
}

// pollLeases are a node's running leases: per channel and long-poll
// client, one timer per poll that ended here since the client's last poll
// began here. Usually that is one; a poll the client gave up on (it
// aborted and polled again) may end after the next one, and its lease must
// not replace the newer one's, which alone can remove the entry. A poll's
// start stops them all. There are at most as many keys as entries the
// node's polls left, each channel's bounded by Config.MaxPresence.
type pollLeases struct {
	mu sync.Mutex
	m  map[leaseKey]*leased
	// byUser indexes m by the entries' users, so that a disconnect order
	// (endOrdered) looks at its user's leases only.
	byUser map[string]map[leaseKey]struct{}
}

// put files e under key. Lock must be held.
func (p *pollLeases) put(key leaseKey, e *leased) {
	if p.m == nil {
		p.m = make(map[leaseKey]*leased)
		p.byUser = make(map[string]map[leaseKey]struct{})
	}
	p.m[key] = e
	keys := p.byUser[e.info.User]
	if keys == nil {
		keys = make(map[leaseKey]struct{}, 1)
		p.byUser[e.info.User] = keys
	}
	keys[key] = struct{}{}
}

// drop takes key out. Lock must be held.
func (p *pollLeases) drop(key leaseKey) {
	e := p.m[key]
	if e == nil {
		return
	}
	delete(p.m, key)
	keys := p.byUser[e.info.User]
	delete(keys, key)
	if len(keys) == 0 {
		delete(p.byUser, e.info.User)
	}
}

type leaseKey struct{ ch, client string }

// leased is one entry's running leases.
type leased struct {
	info   ClientInfo
	issued time.Time              // when the client was given the id it claims with
	timers map[string]*time.Timer // by the stamp of the poll that started it
}

// hold stops the leases of client's entry in ch: a poll has come.
func (p *pollLeases) hold(ch, client string) {
	key := leaseKey{ch, client}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.m[key]; e != nil {
		for _, t := range e.timers {
			t.Stop()
		}
	}
	p.drop(key)
}

// start starts the lease of info's entry in ch that the poll stamp
// refreshed: at its end, the entry leaves unless refreshed since. issued is
// when the client was given the id it claims with.
func (p *pollLeases) start(n *Node, ch string, info ClientInfo, issued time.Time, stamp string) {
	key := leaseKey{ch, info.Client}
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.m[key]
	if e == nil {
		e = &leased{info: info, issued: issued, timers: make(map[string]*time.Timer, 1)}
		p.put(key, e)
	}
	if old := e.timers[stamp]; old != nil {
		old.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(n.cfg.PollLease, func() {
		p.mu.Lock()
		mine := p.m[key] == e && e.timers[stamp] == t
		if mine {
			delete(e.timers, stamp)
			if len(e.timers) == 0 {
				p.drop(key)
			}
		}
		p.mu.Unlock()
		if mine {
			n.expireLease(ch, info, stamp)
		}
	})
	e.timers[stamp] = t
}

// endOrdered ends at once the leases of user's entries (only client's,
// when given) whose clients were given their ids before at: a disconnect
// order given at at ended those clients between two polls (see
// disconnectOrders), and a terminal end leaves at once, as for a held
// poll. A client that connected after the order keeps its lease. It
// returns the broker calls that remove the entries, for the caller to run
// after (on a goroutine of its choosing), or nil when no lease ended.
func (p *pollLeases) endOrdered(n *Node, user, client string, at time.Time) (expire func()) {
	type ending struct {
		ch     string
		info   ClientInfo
		stamps []string
	}
	var ends []ending
	p.mu.Lock()
	for key := range p.byUser[user] { // drop deletes from it: Go allows that
		e := p.m[key]
		if client != "" && e.info.Client != client || e.issued.After(at) {
			continue
		}
		end := ending{ch: key.ch, info: e.info}
		for stamp, t := range e.timers {
			t.Stop()
			end.stamps = append(end.stamps, stamp)
		}
		p.drop(key)
		ends = append(ends, end)
	}
	p.mu.Unlock()
	if len(ends) == 0 {
		return nil
	}
	return func() {
		for _, end := range ends {
			for _, stamp := range end.stamps {
				n.expireLease(end.ch, end.info, stamp)
			}
		}
	}
}
