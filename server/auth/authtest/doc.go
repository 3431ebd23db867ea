// Package authtest is key material for tests of signed tokens: RSA and
// ECDSA keys made once per test binary, so that no private key is
// committed, and their PEM encodings as the server's configuration reads
// them. The tests of server/auth and of server share it.
//
// Concurrency: every function is safe for concurrent use.
package authtest
