// Command waterspout is the WaterSpout push server and its tools in one
// binary: `waterspout serve` (the default) runs the server, `waterspout
// publish` sends a message through a server's API, `waterspout listen`
// prints a channel's messages as JSON lines and resumes through cuts,
// `waterspout token` mints a signed token with the server's configured key,
// `waterspout health` checks a server's /livez (the container's health
// check), `waterspout version` prints the version. Run `waterspout help`
// for the list.
//
// main only wires the process (arguments, environment, standard streams,
// signals) into run, which dispatches to one function per subcommand; every
// one of them takes its inputs as arguments so tests reach all of it. A new
// subcommand is one more entry in commands(). Exit codes: 0 success, 1 the
// command failed, 2 the invocation was wrong (unknown command or flag, bad
// value, a configuration Validate refuses).
//
// # Concurrency
//
// run executes one command on the calling goroutine. SIGINT and SIGTERM
// cancel the context the command runs under; `serve` then shuts the server
// down gracefully, and a second signal kills the process at once.
package main
