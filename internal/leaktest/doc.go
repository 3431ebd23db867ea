// Package leaktest fails a test binary whose tests leave goroutines behind:
// a broker sweeper not closed, a writer that never returned, a server whose
// Run did not end. Every package's TestMain calls Main.
//
// # Concurrency
//
// Main runs once per test binary, after every test has returned.
package leaktest
