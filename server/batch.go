package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/session"
)

// POST /api/batch: many publications, each with its own channel, data and
// key, in one request. The whole body is checked before anything is
// published; then the publications go to the broker one after another, in
// request order, so that those to one channel keep their order. See
// docs/PROTOCOL.md for what a client may assume of a partial failure.

// maxBatchPublications bounds the publications of one batch, as
// maxBroadcastChannels bounds a broadcast's channels.
const maxBatchPublications = 1000

// batchExample is a body of the right shape, shown when one is not.
const batchExample = `{"publications":[{"channel":"orders:1","data":{"status":"cancelled"},"key":"o1"}]}`

// batchRequest is a decoded POST /api/batch body: every publication has
// passed publishRequest.check.
type batchRequest struct {
	Publications []publishRequest
}

// batchResult is one publication's outcome in a batch: its position, or
// Error. Duplicate says that its key had been seen on the channel (in an
// earlier request or earlier in the same batch): the position is the
// original publication's and nothing was delivered again; it is what the
// X-WaterSpout-Duplicate header says for POST /api/publish.
type batchResult struct {
	Channel   string         `json:"channel"`
	Offset    uint64         `json:"offset,omitempty"`
	Epoch     string         `json:"epoch,omitempty"`
	Duplicate bool           `json:"duplicate,omitempty"`
	Error     *session.Error `json:"error,omitempty"`
}

// batchAnswer is the 200 answer of POST /api/batch.
type batchAnswer struct {
	Results []batchResult `json:"results"`
}

// decodeBatch parses a POST /api/batch body (JSON only):
// {"publications": [{"channel", "data", "key"?}, ...]} with 1..
// maxBatchPublications items. Each item is decoded and checked as a publish
// body is (decodeStrict's rules, publishRequest.check); the first bad one
// refuses the whole body, with a reason that starts with its index
// ("publications[3]: ...").
//
// The items are decoded by one json.Decoder walking the array, which gives
// each one's index and, from its offsets, its text for
// session.DuplicateName: decoding each item with a decoder of its own cost
// twice as much (BenchmarkBatch).
//
// The usual body is taken by decodeBatchFast in one pass; the strict path
// decides everything else, and every refusal.
func decodeBatch(contentType string, body []byte, maxData int) (batchRequest, error) {
	return decodeBatchPaths(contentType, body, maxData, true)
}

// decodeBatchPaths is decodeBatch, with the fast path tried first when fast
// is set; FuzzDecodeBatchFast compares the two.
func decodeBatchPaths(contentType string, body []byte, maxData int, fast bool) (batchRequest, error) {
	if err := onlyJSON(contentType, "batch takes a JSON body"); err != nil {
		return batchRequest{}, err
	}
	if fast {
		if req, ok := decodeBatchFast(body, maxData); ok {
			return req, nil
		}
	}
	if !session.ValidJSONText(body) {
		if i, field, ok := invalidBatchText(body); ok {
			return batchRequest{}, apiError(http.StatusBadRequest, "publications[%d]: %s is not valid UTF-8 (JSON text must be UTF-8, and \\u escapes must not be lone surrogates)", i, field)
		}
	}
	var in struct {
		Publications json.RawMessage `json:"publications"`
	}
	if err := decodeStrict(body, &in, batchExample); err != nil {
		return batchRequest{}, err
	}
	list := in.Publications
	switch {
	case len(list) == 0 || string(list) == "null":
		return batchRequest{}, errBatchEmpty
	case list[0] != '[':
		return batchRequest{}, apiError(http.StatusBadRequest, "malformed JSON body: field publications is a JSON %s; it must be an array of objects", jsonValueKind(list[0]))
	}
	dec := json.NewDecoder(bytes.NewReader(list))
	dec.DisallowUnknownFields()
	if _, err := dec.Token(); err != nil { // the '[' just checked
		return batchRequest{}, apiError(http.StatusBadRequest, "malformed JSON body: field publications is not an array")
	}
	var out batchRequest
	for i := 0; dec.More(); i++ {
		if i == maxBatchPublications {
			return batchRequest{}, apiError(http.StatusBadRequest, "more than %d publications", maxBatchPublications)
		}
		start := dec.InputOffset()
		req, err := decodeBatchItem(dec, list, start, maxData)
		if err != nil {
			e := session.AsError(err)
			return batchRequest{}, &session.Error{Code: e.Code, Reason: fmt.Sprintf("publications[%d]: %s", i, e.Reason)}
		}
		out.Publications = append(out.Publications, req)
	}
	if len(out.Publications) == 0 {
		return batchRequest{}, errBatchEmpty
	}
	return out, nil
}

var errBatchEmpty = &session.Error{Code: http.StatusBadRequest, Reason: "publications is empty; send a body such as " + batchExample}

// decodeBatchItem decodes and checks the next publication of dec, which
// walks list (whose text decodeStrict has found to be valid UTF-8 JSON)
// and stands at offset start.
func decodeBatchItem(dec *json.Decoder, list []byte, start int64, maxData int) (publishRequest, error) {
	var in publishJSON
	if err := dec.Decode(&in); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field == "" {
			return publishRequest{}, apiError(http.StatusBadRequest, "a publication is a JSON object such as %s, not a JSON %s",
				`{"channel":"news","data":{"text":"hi"}}`, typ.Value)
		}
		return publishRequest{}, apiError(http.StatusBadRequest, "malformed publication: %s", jsonProblem(err, list, ""))
	}
	// The item's text, without the comma and spaces before it.
	raw := bytes.TrimLeft(list[start:dec.InputOffset()], ", \t\r\n")
	if name, dup := session.DuplicateName(raw); dup {
		return publishRequest{}, apiError(http.StatusBadRequest, "malformed publication: the name %q appears twice (names match without regard to case)", truncate(name, 64))
	}
	req := publishRequest(in)
	if err := req.check(maxData); err != nil {
		return publishRequest{}, err
	}
	return req, nil
}

// jsonValueKind names the kind of JSON value that starts with c, as
// encoding/json's errors do.
func jsonValueKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	}
	return "number"
}

// invalidBatchText finds the first publication of body whose text is not
// valid (see session.ValidJSONText), and names its field; ok is false when
// the body cannot be read that far (decodeStrict then answers for the
// whole body).
func invalidBatchText(body []byte) (index int, field string, ok bool) {
	var in struct {
		Publications []json.RawMessage `json:"publications"`
	}
	if json.Unmarshal(body, &in) != nil {
		return 0, "", false
	}
	for i, raw := range in.Publications {
		if !session.ValidJSONText(raw) {
			return i, invalidTextField(raw), true
		}
	}
	return 0, "", false
}

// errBatchCut is the result of each publication a batch did not attempt
// because its request ended first. Nobody may read it (the client is likely
// gone), but a client that does knows what to resend.
var errBatchCut = &session.Error{Code: http.StatusServiceUnavailable,
	Reason: "not published: the request ended (the client went away or the server is shutting down) before this publication; resend it with the same key"}

// errBatchTime is the result of each publication a batch did not attempt
// because it had published for its whole time (see batchTime).
var errBatchTime = &session.Error{Code: http.StatusServiceUnavailable,
	Reason: "not published: the batch ran out of time (the broker is slow or not answering) before this publication; resend it with the same key"}

// batchTime is how long a batch may publish, counted from the handler's
// start: maxBatchTime, or half the request timeout when that is less (the
// body read leaves the handler's start within the first half of the write
// deadline, see boundRequests). The rest is left for the publication in
// flight and the answer. Without it a batch ran as long as its
// publications took: with Redis hung each waits for the Redis client's
// timeout (3 s), and a batch to 20 channels held its request for a minute,
// past the write deadline, so its answer was lost.
func (s *Server) batchTime() time.Duration { return min(maxBatchTime, s.requestTimeout/2) }

// maxBatchTime bounds batchTime so that, with Redis hung, the answer
// usually reaches a Go backend within its attempt
// (apiclient.DefaultAttemptTimeout, 10 s): about 5 s, as the Redis client
// gives up waiting for a connection at the deadline. A publication in
// flight on a connection still runs to the Redis client's own timeouts
// (3 s a command, up to 5 s more to open a connection: 10 s in all, once
// in 12 runs), within the write deadline. A healthy batch of 1,000 takes
// about 1 s on Redis (93 ms per 100, docs/OPERATIONS.md), a few ms in
// memory.
const maxBatchTime = 5 * time.Second

// handleBatch serves POST /api/batch. The rate limit is spent for every
// publication before the first is published, so a batch is refused whole
// (429) rather than cut short by it. Authorisation and the broker answer
// per publication, in its result. A publication to a channel whose earlier
// publication in this batch failed is not attempted, so that a channel's
// published items are always a prefix of its items in the batch and a
// resend keeps them in order. When the request's context ends (the client
// went away, or a shutdown ran out of time), or the batch has published
// for batchTime, the rest is not attempted either: each gets error 503.
func (s *Server) handleBatch(c echo.Context) error {
	req, err := decodeBody(c, func(contentType string, body []byte) (batchRequest, error) {
		return decodeBatch(contentType, body, s.limits.MaxMessageBytes)
	})
	if err != nil {
		return err
	}
	if err := s.takePublishes(c, len(req.Publications)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(c.Request().Context(), s.batchTime(), errBatchTime)
	defer cancel()
	results, tried := s.publishEach(ctx, publisherOf(c), req.Publications, "batch", errBatchTime)
	s.refundPublishes(c, len(results)-tried)
	return c.JSON(http.StatusOK, batchAnswer{results})
}

// publishEach publishes pubs in order for publisher p, each into its own
// result, for a batch or a broadcast (what names it in the log). A
// publication to a channel whose earlier publication here failed is not
// attempted (its result repeats the failure), so that a channel's published
// items are always a prefix of its items and a resend keeps them in order.
// Once ctx ends the rest are not attempted either: each gets timeUp when
// ctx ran out of its time (ctx's cause), else errBatchCut, and the cut is
// logged at WARN: only a cut, not a ctx that ends after the last
// publication was made (a client giving up as its answer was due).
//
// tried counts the publications handed to the node or refused for p's
// channels; the others were never attempted, and the caller gives back
// their rate, since a resend of them pays again.
func (s *Server) publishEach(ctx context.Context, p *publisher, pubs []publishRequest, what string, timeUp *session.Error) (results []batchResult, tried int) {
	results = make([]batchResult, len(pubs))
	failed := map[string]int{} // channel → index of its first failure
	published := 0
	cut := false // a publication was not attempted, or failed as ctx ended
	for i, pub := range pubs {
		r := &results[i]
		r.Channel = pub.Channel
		if ctx.Err() != nil {
			cut = true
			r.Error = errBatchCut
			if context.Cause(ctx) == timeUp {
				r.Error = timeUp
			}
			continue
		}
		if first, ok := failed[pub.Channel]; ok {
			e := results[first].Error
			r.Error = &session.Error{Code: e.Code,
				Reason: fmt.Sprintf("not published: publications[%d] to the same channel failed (%s)", first, e.Reason)}
			continue
		}
		tried++
		if err := s.publishItem(ctx, p, pub, r); err != nil {
			r.Error = session.AsError(err)
			failed[pub.Channel] = i
			cut = cut || ctx.Err() != nil
			continue
		}
		published++
	}
	if cut {
		msg := what + " cut short: the request ended"
		if context.Cause(ctx) == timeUp {
			msg = what + " cut short: out of time"
		}
		s.log.Warn(msg, "publications", len(results), "published", published, "err", context.Cause(ctx))
	}
	return results, tried
}

// publishItem publishes one publication of a batch for publisher p and
// fills in its position.
func (s *Server) publishItem(ctx context.Context, p *publisher, pub publishRequest, r *batchResult) error {
	if err := mayPublish(p, pub.Channel); err != nil {
		return err
	}
	res, err := s.node.Publish(ctx, pub.Channel, pub.Data, pub.Key)
	if err != nil {
		return err
	}
	r.Offset, r.Epoch, r.Duplicate = res.Offset, res.Epoch, res.Duplicate
	return nil
}
