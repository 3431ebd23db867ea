package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// PublishHandler serves POST /connect/publish: a publish from an SSE or
// long-poll client, which has no command channel of its own. Whether a
// client may publish to a channel is the node's decision (namespace
// clientPublish, or the Authorizer).
type PublishHandler struct {
	cfg transports.Config
}

var _ http.Handler = (*PublishHandler)(nil)

// publishOverhead is what a publish body may hold beyond
// limits.maxMessageBytes of data: channel, key, token and punctuation.
const publishOverhead = 16 << 10

// publishTransport names the short-lived session a publish runs in.
const publishTransport = "publish"

// NewPublishHandler returns the client publish handler.
func NewPublishHandler(cfg transports.Config) (*PublishHandler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sse: publish: %w", err)
	}
	return &PublishHandler{cfg: cfg}, nil
}

// publishRequest is the body of POST /connect/publish.
type publishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	Key     string          `json:"key"`
	Token   string          `json:"token"`
}

// decodeClientPublish reads the body of a client publish: one JSON object
// and nothing after it, with the client's token. Fields are checked by the
// node (channel name, data size and validity, key length), as for a publish
// over WebSocket; unknown fields are ignored, as in a WebSocket command. The
// server API's publish (server/decode.go) is another format: JSON or a form,
// no token, strict fields.
func decodeClientPublish(body []byte) (publishRequest, error) {
	if !session.ValidJSONText(body) {
		// encoding/json would turn it into U+FFFD, merging distinct keys.
		return publishRequest{}, &session.Error{Code: http.StatusBadRequest, Reason: "body is not valid UTF-8 (or has a \\u escape of a lone surrogate)"}
	}
	var req publishRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return publishRequest{}, &session.Error{Code: http.StatusBadRequest, Reason: "body is not a JSON object"}
	}
	if !session.JSONEnded(dec) {
		return publishRequest{}, &session.Error{Code: http.StatusBadRequest, Reason: "data after the JSON object"}
	}
	if name, dup := session.DuplicateName(body); dup {
		return publishRequest{}, &session.Error{Code: http.StatusBadRequest, Reason: fmt.Sprintf("the name %q appears twice (names match without regard to case)", name[:min(len(name), 64)])}
	}
	return req, nil
}

// ServeHTTP publishes the body's data and answers its position.
//
// The body's `token`, when set, is shown to Config.Authenticate as the
// request's `token` query parameter, so one authenticator serves every route.
func (h *PublishHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !transports.Admit(w, r, h.cfg.CheckOrigin, "POST, OPTIONS") {
		return
	}
	node := h.cfg.Node
	limit := int64(node.Limits().MaxMessageBytes + publishOverhead)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			transports.WriteError(w, &session.Error{Code: http.StatusRequestEntityTooLarge, Reason: fmt.Sprintf("body larger than %d bytes", limit)})
			return
		}
		transports.WriteError(w, &session.Error{Code: http.StatusBadRequest, Reason: "cannot read body"})
		return
	}
	req, err := decodeClientPublish(body)
	if err != nil {
		transports.WriteError(w, err)
		return
	}
	authReq := r
	if req.Token != "" {
		authReq = transports.WithToken(r, req.Token)
	}
	// ClientPublish decides per session; this one lives for the request.
	s, refused := h.cfg.Open(r.Context(), transports.Opening{Transport: publishTransport, Auth: authReq})
	if refused != nil {
		transports.WriteError(w, refused.Status)
		return
	}
	res, err := node.ClientPublish(r.Context(), s, req.Channel, req.Data, req.Key)
	if err != nil {
		e := session.AsError(err)
		s.Close(transports.RefusalDisconnect(e))
		transports.WriteError(w, e)
		return
	}
	s.Close(session.Disconnect{Reason: "published"})
	out, err := json.Marshal(transports.PublishAnswer{Channel: res.Channel, Offset: res.Offset, Epoch: res.Epoch})
	if err != nil { // three plain fields
		panic(fmt.Sprintf("sse: encode publish answer: %v", err))
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(out) // the publish happened either way
}
