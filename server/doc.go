// Package server is WaterSpout's HTTP edge: it wires echo routes to the
// session node and the transports, and owns everything around them that is
// not the channel model. That is the backend API (POST /api/publish,
// POST /api/broadcast, GET /api/history) with API-key authentication, the
// browser origin allow-list shared by every transport, configuration (flags,
// environment, config file), Prometheus metrics, /livez and /readyz,
// graceful shutdown, the client bundles under /client/, the demo page at /
// and, when an admin secret is configured, the operator's live view at
// /admin (admin.go: a page, and this node's state read from the metrics
// registry /metrics serves).
//
// It holds no channel state: publications go to session.Node, which owns the
// broker. The transports (ws, sse with client publish, poll, sockjs) are
// plain http.Handlers mounted in one place (mountTransports) with no
// middleware at all, sharing one transports.Config; middleware (request
// log, API metrics, recover, deadlines, origin check, API-key auth, body
// limits) is attached per route to /api/* and the other short requests only.
// echo stays at this edge so that a move to another router touches this
// package only.
//
// Security is wired here from package auth: one auth.Authorizer, installed
// even without token keys (it keeps user#<sub> channels private), is both
// the node's session.Authorizer and every transport's Authenticate; /api/*
// takes an API key (auth.APIKeys) or a publisher token. The per-address
// limits (connections, connects per second) sit in guard, a plain
// http.Handler in front of each transport, keyed by the same client address
// as echo's IPExtractor; publishes per credential are counted in the API
// handlers, and commands per session by the node (session.CommandRate).
// Every limit counts in waterspout_limited_total{limit}. docs/SECURITY.md is
// the threat model.
//
// # Concurrency
//
// A Server is built once by New and then read-only (its limiters and its
// Authorizer are safe for concurrent use), except for its lifecycle: Run may
// be called once; Shutdown may be called any number of times from any
// goroutine (the first one does the work, the others wait for it) and makes
// Run return. Handlers run concurrently, one goroutine per request as
// net/http does; the metrics they update are safe for concurrent use, and
// the per-transport counters on the delivery hot path are cached so that
// delivering takes no lock beyond a sync.Map read. A hijacked WebSocket
// gives its connection slot back from whichever goroutine closes it.
package server
