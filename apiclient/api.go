package apiclient

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// PublishRequest is one publication.
type PublishRequest struct {
	Channel string
	// Data is any value encoding/json encodes; a json.RawMessage is sent as is.
	Data any
	// Key is the idempotency key (≤ 256 bytes): the server delivers one
	// publication per key and channel. Empty: Publish generates one, so
	// that its own retries cannot publish twice.
	Key string
}

// Result is where a publication landed.
type Result struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
	// Key is the idempotency key sent: the caller's, or the generated one.
	Key string `json:"-"`
	// Duplicate is true when the server had seen Key on this channel
	// before: the answer is the original publication's, nothing was
	// delivered again.
	Duplicate bool `json:"-"`
}

// duplicateHeader marks an answer to a repeated key.
const duplicateHeader = "X-WaterSpout-Duplicate"

// Publish publishes req.Data to req.Channel (POST /api/publish).
func (c *Client) Publish(ctx context.Context, req PublishRequest) (Result, error) {
	key, err := keyOrNew(req.Key)
	if err != nil {
		return Result{}, err
	}
	body, err := encodeBody(struct {
		Channel string `json:"channel"`
		Data    any    `json:"data"`
		Key     string `json:"key"`
	}{req.Channel, req.Data, key})
	if err != nil {
		return Result{}, err
	}
	var res Result
	h, err := c.do(ctx, http.MethodPost, "/api/publish", nil, body, &res)
	if err != nil {
		return Result{}, err
	}
	res.Key, res.Duplicate = key, h.Get(duplicateHeader) == "true"
	return res, nil
}

// BroadcastRequest is one payload for many channels (1..1000, distinct).
type BroadcastRequest struct {
	Channels []string
	Data     any
	// Key applies per channel; empty: Broadcast generates one.
	Key string
}

// BroadcastResult is the outcome per channel, in request order.
type BroadcastResult struct {
	Results []ChannelResult `json:"results"`
	// Key is the idempotency key sent.
	Key string `json:"-"`
}

// ChannelResult is one channel's outcome of a broadcast: a position, or Err.
type ChannelResult struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset,omitempty"`
	Epoch   string `json:"epoch,omitempty"`
	// Err is the server's refusal for this channel (Status and Reason),
	// nil when it was published.
	Err *Error `json:"-"`
}

// Broadcast publishes req.Data to every channel of req.Channels (POST
// /api/broadcast). Each channel is published independently: the call
// succeeds when the request was accepted, and a channel the server refused
// has its Err set.
func (c *Client) Broadcast(ctx context.Context, req BroadcastRequest) (BroadcastResult, error) {
	key, err := keyOrNew(req.Key)
	if err != nil {
		return BroadcastResult{}, err
	}
	body, err := encodeBody(struct {
		Channels []string `json:"channels"`
		Data     any      `json:"data"`
		Key      string   `json:"key"`
	}{req.Channels, req.Data, key})
	if err != nil {
		return BroadcastResult{}, err
	}
	var raw struct {
		Results []struct {
			ChannelResult
			Error *wireError `json:"error"`
		} `json:"results"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/api/broadcast", nil, body, &raw); err != nil {
		return BroadcastResult{}, err
	}
	out := BroadcastResult{Results: make([]ChannelResult, len(raw.Results)), Key: key}
	for i, r := range raw.Results {
		out.Results[i] = r.ChannelResult
		if r.Error != nil {
			out.Results[i].Err = &Error{Method: http.MethodPost, Path: "/api/broadcast",
				Status: r.Error.Code, Code: r.Error.Code, Reason: r.Error.Reason, Attempts: 1}
		}
	}
	return out, nil
}

// BatchResult is the outcome of a batch: one PublicationResult per
// publication, in request order.
type BatchResult struct {
	Results []PublicationResult `json:"results"`
}

// PublicationResult is one publication's outcome in a batch: a position,
// or Err.
type PublicationResult struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset,omitempty"`
	Epoch   string `json:"epoch,omitempty"`
	// Key is the idempotency key sent: the caller's, or the generated one.
	Key string `json:"-"`
	// Duplicate is true when the server had seen Key on this channel
	// before (in an earlier request, or earlier in the same batch): the
	// position is the original publication's, nothing was delivered again.
	Duplicate bool `json:"duplicate,omitempty"`
	// Err is the server's refusal of this publication (Status and
	// Reason), nil when it was published. A 5xx one may or may not have
	// been published: resend it, with the same Key, to be sure.
	Err *Error `json:"-"`
}

// MaxBatch is the most publications one Batch call may carry.
const MaxBatch = 1000

// Batch publishes many publications, each with its own channel, data and
// key, in one request (POST /api/batch): 1..MaxBatch of them, within the
// server's body limit (1 MiB unless its operator changed it). A
// publication with no Key is given a generated one, so that the call's own
// retries cannot publish anything twice.
//
// The server checks every publication before publishing any: a bad one
// fails the call with an *Error naming it ("publications[3]: ...") and
// nothing is published. Then it publishes them in order, so those to one
// channel keep their order; the call succeeds and each result says what
// happened to its publication. After a publication fails, the batch's later
// publications to its channel are not attempted (they fail too), so
// resending the failed ones, in order and with their keys, keeps every
// channel in order.
func (c *Client) Batch(ctx context.Context, pubs []PublishRequest) (BatchResult, error) {
	if len(pubs) == 0 || len(pubs) > MaxBatch {
		return BatchResult{}, fmt.Errorf("apiclient: a batch holds 1..%d publications, not %d", MaxBatch, len(pubs))
	}
	type item struct {
		Channel string `json:"channel"`
		Data    any    `json:"data"`
		Key     string `json:"key"`
	}
	items := make([]item, len(pubs))
	for i, p := range pubs {
		key, err := keyOrNew(p.Key)
		if err != nil {
			return BatchResult{}, err
		}
		items[i] = item{p.Channel, p.Data, key}
	}
	body, err := encodeBody(struct {
		Publications []item `json:"publications"`
	}{items})
	if err != nil {
		return BatchResult{}, err
	}
	var raw struct {
		Results []struct {
			PublicationResult
			Error *wireError `json:"error"`
		} `json:"results"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/api/batch", nil, body, &raw); err != nil {
		return BatchResult{}, err
	}
	if len(raw.Results) != len(items) {
		return BatchResult{}, fmt.Errorf("apiclient: POST /api/batch: %d results for %d publications", len(raw.Results), len(items))
	}
	out := BatchResult{Results: make([]PublicationResult, len(raw.Results))}
	for i, r := range raw.Results {
		out.Results[i] = r.PublicationResult
		out.Results[i].Key = items[i].Key
		if r.Error != nil {
			out.Results[i].Err = &Error{Method: http.MethodPost, Path: "/api/batch",
				Status: r.Error.Code, Code: r.Error.Code, Reason: r.Error.Reason, Attempts: 1}
		}
	}
	return out, nil
}

// Position is a place in a channel's history.
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// HistoryRequest asks for a channel's retained publications.
type HistoryRequest struct {
	Channel string
	// Since, when set, asks for the publications after it; nil: from the
	// oldest retained.
	Since *Position
	// Limit caps the publications returned (the server caps it at 1000);
	// 0 means the server's default (100). OnlyPosition asks for none.
	Limit int
	// OnlyPosition asks for the channel's position alone (limit=0).
	OnlyPosition bool
}

// Publication is a retained publication.
type Publication struct {
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	Epoch   string          `json:"epoch"`
	Data    json.RawMessage `json:"data"`
	Key     string          `json:"key,omitempty"`
	// Time is when it was published, in Unix milliseconds.
	Time int64 `json:"time"`
}

// History is a page of a channel's history, oldest first. The server
// writes its answer with History and Publication, so that both sides of
// GET /api/history are one declaration.
type History struct {
	Channel string `json:"channel"`
	// Epoch and Offset are the channel's current position.
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
	// Recovered is set when Since was: true when every publication after
	// it is retained, false when history no longer covers it (or the
	// epoch changed).
	Recovered    *bool         `json:"recovered,omitempty"`
	Publications []Publication `json:"publications"`
}

// History reads a channel's retained publications (GET /api/history). To
// page, pass the last publication's position as the next Since.
func (c *Client) History(ctx context.Context, req HistoryRequest) (History, error) {
	q := url.Values{"channel": {req.Channel}}
	if req.Since != nil {
		q.Set("since_epoch", req.Since.Epoch)
		q.Set("since_offset", strconv.FormatUint(req.Since.Offset, 10))
	}
	switch {
	case req.OnlyPosition:
		q.Set("limit", "0")
	case req.Limit < 0:
		return History{}, errors.New("apiclient: negative history limit")
	case req.Limit > 0:
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	var h History
	if _, err := c.do(ctx, http.MethodGet, "/api/history", q, nil, &h); err != nil {
		return History{}, err
	}
	return h, nil
}

// keyOrNew returns key, or a new random one: 128 bits, so that two calls
// never share one.
func keyOrNew(key string) (string, error) {
	if key != "" {
		return key, nil
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("apiclient: generate idempotency key: %w", err)
	}
	return "apiclient-" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func encodeBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("apiclient: encode request: %w", err)
	}
	return b, nil
}
