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
// one consumer: the transport's writer, which takes frames with TryNext (a
// transports.Pump) or waits in Next (a long-poll), from one goroutine at a
// time.
// Commands (HandleCommand, Subscribe, Unsubscribe) may come from any one
// goroutine at a time per session (the transport's reader).
//
// # Lock graph
//
// This is the one place the locks of a delivery are ordered; a function
// whose caller must hold a lock, or must not, says so in its comment
// ("Lock must be held", "must not be held on entry"), and a field guarded
// by a lock names it. An arrow is "may be held while taking":
//
//	a broker's delivery lock, one of:
//	  MemoryBroker memoryChannel.mu (publication offset order),
//	  memory presenceChannel.mu (join/leave order; → memoryPresence.mu too),
//	  redis Broker.callMu (a cluster's handler calls, one at a time)
//	    → hub shard lock (hubShard.mu, read for a delivery)
//	        → Session.mu
//	            → the session's wake-up (onWake: never blocks, see below)
//	                → transports writerPool.mu (a leaf)
//
//	memoryShard.mu → memoryChannel.mu (the sweep, forgetIfUnused; lockChannel
//	                 releases the shard lock first, never the reverse)
//	hubShard.brokerMu → hubShard.mu (a look), and the broker's
//	                    Subscribe/Unsubscribe; never held with Session.mu
//	Node.mu: a leaf (NewSession, forget, Shutdown and runControl copy the
//	         sessions out and fail them after releasing it); SetUser
//	         takes it under Session.mu to file the session by user
//	disconnectOrders.mu: a leaf, taken alone (runControl records before
//	         Node.mu; orderedAway reads after releasing Session.mu)
//	pollLeases.mu: a leaf; the broker calls that end a lease (a timer,
//	         endOrdered's returned calls) run after releasing it
//	sockjs links.mu (a leaf); sockjs link.mu → Session.mu (link.fail and
//	          bind fail the bound session); sockjs-go's session lock →
//	          link.mu (a receiver's write counts itself)
//	transports.Conn: fdMu and mu are taken alone, never with Session.mu
//	poll pollSink.mu → Session.mu, and the hub and broker locks (its answer
//	          closes the session); never taken under Session.mu
//
// The redis broker's own locks (inspectMu → cmdMu → mu) are taken alone:
// it hands publications to the hub with none of them held, only callMu.
//
// Nothing holding Session.mu calls into the hub, the broker or a transport,
// except through the session's wake-up: signal calls onWake with Session.mu
// held, on the goroutine that queued the frame (for a publication, the
// hub's fan-out, under a hub shard read lock and the broker's channel
// lock). So a wake-up must not block, must not take Session.mu and must
// not call back into the session. The two there are:
//
//   - transports.Pump.kick (every transport: ws, SSE, SockJS, poll): an
//     atomic flag, then either `go p.run()` or writerPool.submit, which
//     takes writerPool.mu for an append and may start a goroutine. The writers take Session.mu
//     (TryNext, Pending) only after releasing writerPool.mu. A Hosted sink
//     (a long-poll waiting on net/http) may take the turn instead in Host:
//     an atomic swap and a send on a channel of capacity one that is empty
//     whenever Host can succeed, or, for a held (hijacked) poll, an atomic
//     swap and `go ps.hostAnswer()`; it takes no lock.
//   - Session.Next's own wake-up (a writer that waits on a goroutine of
//     its own: tests and tools; every transport uses a Pump): a send on a
//     channel of capacity one, dropped when full.
//
// Holding Session.mu over the wake-up is what makes it exact: a frame
// queued after the writer's last look at the queue either finds the writer
// running, or wakes it (see Pump.release). It is also cheap: a wake-up is
// the only work the fan-out does per session beyond the append.
//
// A Session never blocks publishing: a full queue marks the session failed
// and its own transport tears it down. Sessions change presence with no
// lock held.
package session
