package session

import (
	"context"
	"sync"
)

// memoryPresence is the MemoryBroker's presence: per channel, client id →
// user. A channel's entry goes when its last client leaves.
//
// Lock order: a channel's mu, then mu. A channel's mu is held while its join
// or leave is handed to the node, so the events of one channel reach
// subscribers in the order the changes were made.
type memoryPresence struct {
	mu    sync.Mutex
	chans map[string]*presenceChannel
}

type presenceChannel struct {
	mu      sync.Mutex
	clients map[string]string // client → user
	stamps  map[string]string // client → stamp, for leased entries (PresenceLeaser)
	dead    bool              // removed from chans; look it up again
}

var (
	_ Presencer      = (*MemoryBroker)(nil)
	_ PresenceLeaser = (*MemoryBroker)(nil)
)

// lock returns ch's presence, locked; created when create is set, nil when
// it does not exist otherwise.
func (p *memoryPresence) lock(ch string, create bool) *presenceChannel {
	for {
		p.mu.Lock()
		c := p.chans[ch]
		if c == nil && create {
			if p.chans == nil {
				p.chans = make(map[string]*presenceChannel)
			}
			c = &presenceChannel{clients: make(map[string]string)}
			p.chans[ch] = c
		}
		p.mu.Unlock()
		if c == nil {
			return nil
		}
		c.mu.Lock()
		if !c.dead {
			return c
		}
		c.mu.Unlock()
	}
}

// AddPresence implements Presencer.
func (b *MemoryBroker) AddPresence(_ context.Context, ch string, info ClientInfo, opts PresenceOptions) (int, error) {
	c := b.presence.lock(ch, true)
	defer c.mu.Unlock()
	if _, ok := c.clients[info.Client]; !ok && len(c.clients) >= opts.Max {
		if len(c.clients) == 0 { // made for this call: do not keep it
			b.presence.drop(ch, c)
		}
		return len(c.clients), ErrPresenceFull
	}
	c.clients[info.Client] = info.User
	n := len(c.clients)
	if n <= opts.Notify {
		b.joinLeave(&JoinLeave{Type: "join", Channel: ch, ClientInfo: info})
	}
	return n, nil
}

// RefreshPresence implements PresenceLeaser.
func (b *MemoryBroker) RefreshPresence(_ context.Context, ch string, info ClientInfo, stamp string, opts PresenceOptions) (int, error) {
	c := b.presence.lock(ch, true)
	defer c.mu.Unlock()
	user, had := c.clients[info.Client]
	switch {
	case had && user != info.User:
		return len(c.clients), ErrPresenceTaken
	case !had && len(c.clients) >= opts.Max:
		if len(c.clients) == 0 { // made for this call: do not keep it
			b.presence.drop(ch, c)
		}
		return len(c.clients), ErrPresenceFull
	}
	c.clients[info.Client] = info.User
	if c.stamps == nil {
		c.stamps = make(map[string]string)
	}
	c.stamps[info.Client] = stamp
	n := len(c.clients)
	if !had && n <= opts.Notify {
		b.joinLeave(&JoinLeave{Type: "join", Channel: ch, ClientInfo: info})
	}
	return n, nil
}

// ExpirePresence implements PresenceLeaser.
func (b *MemoryBroker) ExpirePresence(_ context.Context, ch string, info ClientInfo, stamp string, opts PresenceOptions) error {
	c := b.presence.lock(ch, false)
	if c == nil {
		return nil
	}
	defer c.mu.Unlock()
	if st, ok := c.stamps[info.Client]; !ok || st != stamp {
		return nil
	}
	b.removeLocked(ch, c, info.Client, opts)
	return nil
}

// RemovePresence implements Presencer.
func (b *MemoryBroker) RemovePresence(_ context.Context, ch string, info ClientInfo, opts PresenceOptions) error {
	c := b.presence.lock(ch, false)
	if c == nil {
		return nil
	}
	defer c.mu.Unlock()
	b.removeLocked(ch, c, info.Client, opts)
	return nil
}

// removeLocked removes client's entry from c, which the caller holds
// locked, with its leave.
func (b *MemoryBroker) removeLocked(ch string, c *presenceChannel, client string, opts PresenceOptions) {
	user, ok := c.clients[client]
	if !ok {
		return
	}
	n := len(c.clients) // counting the one leaving, as its join did
	delete(c.clients, client)
	delete(c.stamps, client)
	if len(c.clients) == 0 {
		b.presence.drop(ch, c)
	}
	if n <= opts.Notify {
		b.joinLeave(&JoinLeave{Type: "leave", Channel: ch, ClientInfo: ClientInfo{client, user}})
	}
}

// drop forgets c, which the caller holds locked and empty.
func (p *memoryPresence) drop(ch string, c *presenceChannel) {
	c.dead = true
	p.mu.Lock()
	if p.chans[ch] == c {
		delete(p.chans, ch)
	}
	p.mu.Unlock()
}

func (b *MemoryBroker) joinLeave(ev *JoinLeave) {
	if h, ok := b.handler.(JoinLeaveHandler); ok {
		h.HandleJoinLeave(ev)
	}
}

// Presence implements Presencer.
func (b *MemoryBroker) Presence(_ context.Context, ch string) ([]ClientInfo, error) {
	c := b.presence.lock(ch, false)
	if c == nil {
		return []ClientInfo{}, nil
	}
	defer c.mu.Unlock()
	out := make([]ClientInfo, 0, len(c.clients))
	for client, user := range c.clients {
		out = append(out, ClientInfo{client, user})
	}
	return out, nil
}

// PresenceStats implements Presencer.
func (b *MemoryBroker) PresenceStats(_ context.Context, ch string) (PresenceStats, error) {
	c := b.presence.lock(ch, false)
	if c == nil {
		return PresenceStats{}, nil
	}
	defer c.mu.Unlock()
	users := make(map[string]struct{}, len(c.clients))
	for _, u := range c.clients {
		users[u] = struct{}{}
	}
	return PresenceStats{Clients: len(c.clients), Users: len(users)}, nil
}

// PresenceCount implements PresenceCounter.
func (b *MemoryBroker) PresenceCount(_ context.Context, ch string) (int, error) {
	c := b.presence.lock(ch, false)
	if c == nil {
		return 0, nil
	}
	defer c.mu.Unlock()
	return len(c.clients), nil
}
