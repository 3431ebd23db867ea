// Package clientjs holds the built WaterSpout browser client, so that the
// server can serve it without npm: the bundles under dist/ are committed and
// rebuilt with `npm run build` (a test fails when they are stale).
//
// # Concurrency
//
// Dist is a read-only embedded file system, safe for concurrent use.
package clientjs
