// Package session owns WaterSpout's channel model: publications with
// per-channel offsets and epochs, positions and cursors, the hub that maps a
// channel to the sessions of this node, the Broker interface with its
// in-memory implementation, and the Session, the transport-neutral state of
// one client (its subscriptions, its bounded send queue, recovery and
// deduplication).
//
// A message flows Broker → hub → Session queue → the transport's writer.
// Transports (package transports/...) turn HTTP requests into Sessions; they
// never see the broker. This package imports no transport and no HTTP code.
//
// Presence (presence.go) is an optional capability of a Broker, found by type
// assertion: a Presencer keeps who is subscribed to a channel and delivers
// join/leave events, which reach sessions through the hub like publications
// but carry no offset and are never kept or replayed. A Cluster carries a
// backend's disconnect and unsubscribe orders to every node.
//
// # Concurrency
//
// Node, MemoryBroker and Session are safe for concurrent use. A Session has
// one consumer: the transport's writer calls Next from a single goroutine.
// Commands (HandleCommand, Subscribe, Unsubscribe) may come from any one
// goroutine at a time per session (the transport's reader).
//
// Lock order: a MemoryBroker channel lock, then a hub shard lock (read), then
// a Session lock. Nothing holding a Session lock calls into the hub or the
// broker, so a Session never blocks publishing: a full queue marks the session
// failed and its own transport tears it down. The memory broker's presence
// takes a presence channel lock, then its map lock; it holds the channel lock
// while handing a join or leave to the hub (then a Session lock), so one
// channel's events keep their order. Sessions change presence with no lock
// held.
package session
