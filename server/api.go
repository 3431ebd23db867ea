package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/apiclient"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// History limits of GET /api/history.
const (
	defaultHistoryLimit = 100
	maxHistoryLimit     = 1000
)

// broadcastResult is one channel's outcome in a broadcast.
type broadcastResult struct {
	Channel string         `json:"channel"`
	Offset  uint64         `json:"offset,omitempty"`
	Epoch   string         `json:"epoch,omitempty"`
	Error   *session.Error `json:"error,omitempty"`
}

// errBroadcastTime is the result of each channel a broadcast did not
// attempt because it had published for its whole time (see batchTime).
var errBroadcastTime = &session.Error{Code: http.StatusServiceUnavailable,
	Reason: "not published: the broadcast ran out of time (the broker is slow or not answering) before this channel; resend the broadcast with the same key"}

// duplicateHeader marks an answer to a publish whose key was seen before.
const duplicateHeader = "X-WaterSpout-Duplicate"

// readBody reads a request body that bodyLimit has bounded.
func readBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(c.Request().Body)
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return b, nil
	case errors.As(err, &tooLarge):
		return nil, err // answered 413
	}
	// The client went away or sent too slowly for the read deadline.
	return nil, apiError(http.StatusBadRequest, "could not read the request body")
}

// decodeBody reads c's body and decodes it with decode, which is given the
// request's Content-Type.
func decodeBody[T any](c echo.Context, decode func(contentType string, body []byte) (T, error)) (T, error) {
	body, err := readBody(c)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(c.Request().Header.Get(echo.HeaderContentType), body)
}

func (s *Server) handlePublish(c echo.Context) error {
	req, err := decodeBody(c, func(contentType string, body []byte) (publishRequest, error) {
		return decodePublish(contentType, body, s.limits.MaxMessageBytes)
	})
	if err != nil {
		return err
	}
	if err := mayPublish(publisherOf(c), req.Channel); err != nil {
		return err
	}
	if err := s.takePublishes(c, 1); err != nil {
		return err
	}
	res, err := s.node.Publish(c.Request().Context(), req.Channel, req.Data, req.Key)
	if err != nil {
		return err
	}
	if res.Duplicate {
		c.Response().Header().Set(duplicateHeader, "true")
	}
	return writePublishAnswer(c, transports.PublishAnswer{Channel: res.Channel, Offset: res.Offset, Epoch: res.Epoch})
}

func (s *Server) handleBroadcast(c echo.Context) error {
	req, err := decodeBody(c, func(contentType string, body []byte) (broadcastRequest, error) {
		return decodeBroadcast(contentType, body, s.limits.MaxMessageBytes)
	})
	if err != nil {
		return err
	}
	if err := s.takePublishes(c, len(req.Channels)); err != nil {
		return err
	}
	// Published as a batch is, bounded in time the same way (see
	// batchTime): with Redis hung, each channel waits for the Redis
	// client's timeout.
	ctx, cancel := context.WithTimeoutCause(c.Request().Context(), s.batchTime(), errBroadcastTime)
	defer cancel()
	pubs := make([]publishRequest, len(req.Channels))
	for i, ch := range req.Channels {
		pubs[i] = publishRequest{Channel: ch, Data: req.Data, Key: req.Key}
	}
	results := make([]broadcastResult, len(req.Channels))
	each, tried := s.publishEach(ctx, publisherOf(c), pubs, "broadcast", errBroadcastTime)
	s.refundPublishes(c, len(each)-tried)
	for i, r := range each {
		results[i] = broadcastResult{Channel: r.Channel, Offset: r.Offset, Epoch: r.Epoch, Error: r.Error}
	}
	return c.JSON(http.StatusOK, struct {
		Results []broadcastResult `json:"results"`
	}{results})
}

func (s *Server) handleHistory(c echo.Context) error {
	q := c.Request().URL.Query()
	ch := q.Get("channel")
	if err := session.ValidateChannel(ch); err != nil {
		return err
	}
	if err := mayRead(publisherOf(c), ch); err != nil {
		return err
	}
	limit := defaultHistoryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange): // digits, past any count: at most the most
			n = maxHistoryLimit
		case err != nil:
			return apiError(http.StatusBadRequest, "limit must be a non-negative integer")
		}
		limit = int(min(n, maxHistoryLimit))
	}
	var since *session.Position
	epoch, offset := q.Get("since_epoch"), q.Get("since_offset")
	switch {
	case epoch != "" && offset != "":
		n, err := strconv.ParseUint(offset, 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange):
			return apiError(http.StatusBadRequest, "since_offset is larger than any offset (at most 2^64-1)")
		case err != nil:
			return apiError(http.StatusBadRequest, "since_offset must be a non-negative integer")
		}
		since = &session.Position{Epoch: epoch, Offset: n}
	case epoch != "" || offset != "":
		return apiError(http.StatusBadRequest, "give since_epoch and since_offset together")
	}
	res, err := s.node.History(c.Request().Context(), ch, since, limit)
	if err != nil {
		return err
	}
	// The answer is written with the Go client's types: the two sides of
	// GET /api/history are one declaration and cannot drift apart.
	out := apiclient.History{Channel: ch, Epoch: res.Top.Epoch, Offset: res.Top.Offset,
		Publications: make([]apiclient.Publication, 0, len(res.Publications))}
	if since != nil {
		out.Recovered = &res.Recoverable
	}
	for _, p := range res.Publications {
		out.Publications = append(out.Publications, apiclient.Publication{
			Channel: p.Channel, Offset: p.Offset, Epoch: p.Epoch, Data: p.Data, Key: p.Key, Time: p.Time,
		})
	}
	return c.JSON(http.StatusOK, out)
}
