package session

import (
	"sync"
	"time"
)

// A long-poll client has a session only while a poll is held. A disconnect
// order (Node.Disconnect, on every node) that comes while it is between two
// polls finds no session of it: without more, its next poll would open a
// new one and go on as if nothing had happened. So each node remembers the
// orders it carried out for one poll lease (Config.PollLease: a poller that
// polls later than that has left presence anyway), and a later poll whose
// client was first given its id before an order for its user (and client)
// ends at its first Subscribe with that order's disconnect, 3504. A client
// that connects again afterwards has a newer id and is not affected.

// maxDisconnectOrders bounds the orders a node remembers, about 100 bytes
// each. Orders come from API keys only; past the bound, expired ones are
// swept and a new one is not remembered (its pollers between two polls are
// not reached, as before this existed).
const maxDisconnectOrders = 100_000

// disconnectOrders remembers recent disconnect orders. Safe for concurrent
// use; its lock is a leaf.
type disconnectOrders struct {
	keep time.Duration
	mu   sync.Mutex
	at   map[orderKey]orderTimes
}

// orderTimes are when the newest order for a key was given, and when this
// node learned of it: it is kept for one lease from then, so that an order
// that reached the node late (cut off from the broker for longer than a
// lease) still meets the pollers that went on polling here meanwhile.
type orderTimes struct{ given, learned time.Time }

// orderKey is an order's target: every session of user (client ""), or
// the one client of user that presence lists as client.
type orderKey struct{ user, client string }

// record remembers an order for user (and client) given at given, which
// this node learned of at now.
func (o *disconnectOrders) record(user, client string, given, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.at == nil {
		o.at = make(map[orderKey]orderTimes)
	}
	if len(o.at) >= maxDisconnectOrders {
		for k, t := range o.at {
			if now.Sub(t.learned) > o.keep {
				delete(o.at, k)
			}
		}
		if len(o.at) >= maxDisconnectOrders {
			return
		}
	}
	// Orders can come out of order (one read late from the broker's log):
	// the newest stands.
	if k := (orderKey{user, client}); given.After(o.at[k].given) {
		o.at[k] = orderTimes{given, now}
	}
}

// after reports whether an order for user, or for user's client, was
// given after issued and within the last keep before now. Both times are
// in milliseconds (ids and orders carry no finer ones): an id made in the
// order's millisecond counts as made before it.
func (o *disconnectOrders) after(user, client string, issued, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, k := range [2]orderKey{{user, ""}, {user, client}} {
		if t, ok := o.at[k]; ok && !issued.After(t.given) && now.Sub(t.learned) <= o.keep {
			return true
		}
	}
	return false
}
