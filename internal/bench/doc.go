// Package bench is the load generator behind `waterspout bench`: it drives
// a running push server over WebSocket, SSE and long-polling and measures
// what users choose a push server on — memory per idle connection, fan-out
// throughput, latency and server CPU per delivery — for WaterSpout and, in
// the same run, for its peers (Nchan, Centrifugo) through the same client
// code. Centrifugo's JSON client protocol is in centrifugo.go.
//
// Every scenario (idle, fanout, fanout-sse, fanout-poll, channels, publish,
// reconnect, slow) publishes payloads of the form {"s":SEQ,"t":NANOS,…}
// through the target's HTTP publish endpoint: SEQ numbers the publications
// of a channel so that subscribers count gaps and duplicates on any server,
// with or without offsets, and NANOS is the *intended* send time on an
// open-loop schedule, so latency includes any time the publisher fell
// behind (no coordinated omission). The publish scenario also sends its
// publications in batches (POST /api/batch) on WaterSpout, to compare the
// two. Server memory and CPU come from
// /proc/PID of the server process (and its children, for nginx).
//
// A Centrifugo subscriber's reader also answers the server's pings: the
// reader is the connection's only writer once it has subscribed.
//
// The floor scenario (S0) runs against no server: it opens S2's number of
// loopback TCP connections in this process and delivers S2's frames on
// S2's schedule with raw write(2) calls from one thread per CPU, read by
// one epoll thread. Its CPU and latency are what the machine's kernel
// costs for that traffic, the floor under any server's S2 numbers.
//
// Client sockets are spread over source addresses 127.0.0.2, 127.0.0.3, …
// so that one process can hold more connections than one address has
// ephemeral ports, and RaiseFileLimit lifts RLIMIT_NOFILE to its hard limit.
//
// Concurrency: Run drives one scenario at a time. Within a scenario every
// subscriber has its own reader goroutine that records into shared atomic
// counters and a lock-free histogram; the coordinator goroutine reads them
// only between steps, after the subscribers have drained. Everything a
// scenario starts ends before Run returns.
package bench
