// Package apiclient is the Go client of WaterSpout's backend HTTP API: a
// backend publishes to a channel (Publish), one payload to many channels
// at once (Broadcast), many publications each to its own channel in one
// request (Batch), and reads a channel's retained publications (History).
//
//	c, err := apiclient.New(apiclient.Config{URL: "https://push.example.com", APIKey: key})
//	res, err := c.Publish(ctx, apiclient.PublishRequest{Channel: "orders:42", Data: order})
//
// # Retries never publish twice
//
// A network failure or a 5xx answer is retried (Config.Retries times, with
// full-jitter backoff) with the same body, and so with the same idempotency
// key: when the caller gives no key, Publish and Broadcast generate one per
// call, and Batch one per publication. The server remembers a key at least as long as its publication stays
// in history, so an answer lost on the way back and retried is answered with
// the original offset (Result.Duplicate) and delivered once. A 4xx answer is
// not retried: it is returned as an *Error, which errors.Is matches against
// ErrUnauthorized, ErrForbidden, ErrInvalid, ErrRateLimited and ErrUnavailable;
// a rate-limited answer carries the server's Retry-After.
//
// # Concurrency
//
// A Client holds no per-call state: its methods may be called from many
// goroutines at once, and share the http.Client's connections.
package apiclient
