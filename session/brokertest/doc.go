// Package brokertest is the conformance suite every session.Broker passes:
// the in-memory broker, which is the reference behaviour, and the Redis
// broker. Run drives one table of scenarios (offsets, epochs, the history
// window and TTL, idempotency keys, delivery order, subscribe and
// unsubscribe) against brokers made by a factory, so the two implementations
// cannot drift apart. StartRedis runs a throwaway redis-server for tests of
// this and other packages, and StartProxy a TCP proxy in front of one (or
// of any server) that injects network faults: connections that go silent
// while open, or cut.
//
// # Concurrency
//
// Run starts its subtests in parallel, each with its own broker from the
// factory, which must therefore be safe to call from several goroutines.
// A Recorder may be called by a broker from any goroutine; its accessors are
// safe to use while deliveries are still arriving. A RedisServer is driven by
// the test goroutine only; a Proxy's methods are safe from any goroutine.
package brokertest
