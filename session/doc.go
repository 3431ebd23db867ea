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
// failed and its own transport tears it down.
package session
