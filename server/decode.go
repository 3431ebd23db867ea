package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/session"
)

// publishRequest is a decoded POST /api/publish body.
type publishRequest struct {
	Channel string
	Data    json.RawMessage // valid, compact JSON
	Key     string
}

// broadcastRequest is a decoded POST /api/broadcast body. Channel names are
// checked one by one when publishing, so one bad name fails only its result.
type broadcastRequest struct {
	Channels []string
	Data     json.RawMessage
	Key      string
}

// maxBroadcastChannels bounds the work one broadcast can ask for.
const maxBroadcastChannels = 1000

// bodyKind is how a request body is encoded.
type bodyKind int

const (
	bodyJSON bodyKind = iota
	bodyForm
)

// kindOf reads the Content-Type. A missing one is taken as JSON, the API's
// native form, so a backend that forgets the header still works.
func kindOf(contentType string) (bodyKind, error) {
	if contentType == "" || contentType == echo.MIMEApplicationJSON {
		// The usual header, what mime.ParseMediaType (and its map) would
		// make of it: it is read twice per publish (bodyLimit, decodePublish).
		return bodyJSON, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, apiError(http.StatusUnsupportedMediaType, "unreadable Content-Type")
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return bodyJSON, nil
	case mt == "application/x-www-form-urlencoded":
		return bodyForm, nil
	}
	return 0, apiError(http.StatusUnsupportedMediaType, "Content-Type must be application/json or application/x-www-form-urlencoded")
}

// onlyJSON refuses, with 415 and refusal as the reason, a body whose
// Content-Type is not JSON (a missing one is, as in kindOf).
func onlyJSON(contentType, refusal string) error {
	kind, err := kindOf(contentType)
	if err != nil {
		return err
	}
	if kind != bodyJSON {
		return apiError(http.StatusUnsupportedMediaType, "%s", refusal)
	}
	return nil
}

// decodePublish parses a publish body, JSON or form-encoded, and checks
// everything that does not need the broker: the channel name, that data is
// JSON of at most maxData bytes, and the key's length.
//
// JSON: {"channel": "...", "data": <any JSON>, "key": "..."}; unknown fields
// are refused so that a misspelt "key" cannot silently publish twice.
//
// Form: channel=...&data=TEXT (delivered as the JSON string TEXT) or
// channel=...&json=JSON (delivered as that JSON value), and optionally
// key=...; other fields (a submit button's) are ignored.
//
// The usual JSON body is decoded by decodePublishFast in one pass; every
// other body, and every refusal, goes through the strict path below.
func decodePublish(contentType string, body []byte, maxData int) (publishRequest, error) {
	return decodePublishPaths(contentType, body, maxData, true)
}

// decodePublishPaths is decodePublish, with the fast path tried first when
// fast is set; FuzzDecodePublishFast compares the two.
func decodePublishPaths(contentType string, body []byte, maxData int, fast bool) (publishRequest, error) {
	kind, err := kindOf(contentType)
	if err != nil {
		return publishRequest{}, err
	}
	if fast && kind == bodyJSON {
		if req, ok := decodePublishFast(body, maxData); ok {
			return req, nil
		}
	}
	var req publishRequest
	if kind == bodyForm {
		req, err = decodePublishForm(body)
	} else {
		req, err = decodePublishJSON(body)
	}
	if err != nil {
		return publishRequest{}, err
	}
	if err := req.check(maxData); err != nil {
		return publishRequest{}, err
	}
	return req, nil
}

// check applies the checks every publication of the API passes before the
// broker sees it (a publish's, each of a batch's): the channel name, that
// data is JSON of at most maxData bytes (compacting it), the key's length.
func (req *publishRequest) check(maxData int) error {
	if err := session.ValidateChannel(req.Channel); err != nil {
		return err
	}
	data, err := checkData(req.Data, maxData)
	if err != nil {
		return err
	}
	req.Data = data
	return checkKey(req.Key)
}

// publishJSON is the JSON form of one publication: a publish body, or an
// item of a batch.
type publishJSON struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	Key     string          `json:"key"`
}

func decodePublishJSON(body []byte) (publishRequest, error) {
	var in publishJSON
	if err := decodeStrict(body, &in, `{"channel":"news","data":{"text":"hi"}}`); err != nil {
		return publishRequest{}, err
	}
	return publishRequest(in), nil
}

func decodePublishForm(body []byte) (publishRequest, error) {
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		// curl -d sends this Content-Type unless told otherwise.
		return publishRequest{}, apiError(http.StatusBadRequest,
			"the body looks like JSON but its Content-Type is application/x-www-form-urlencoded (curl -d sends that): add the header Content-Type: application/json")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return publishRequest{}, apiError(http.StatusBadRequest, "malformed form body")
	}
	if _, ok := form["channel"]; !ok {
		return publishRequest{}, apiError(http.StatusBadRequest, "the form has no channel field: send channel=NAME&data=TEXT (or json=JSON)")
	}
	var req publishRequest
	fields := []struct {
		name string
		dst  *string
	}{{"channel", &req.Channel}, {"key", &req.Key}}
	for _, f := range fields {
		if *f.dst, err = single(form, f.name); err != nil {
			return publishRequest{}, err
		}
	}
	_, hasData := form["data"]
	_, hasJSON := form["json"]
	switch {
	case hasData && hasJSON:
		return publishRequest{}, apiError(http.StatusBadRequest, "give either data or json, not both")
	case hasData:
		text, err := single(form, "data")
		if err != nil {
			return publishRequest{}, err
		}
		if !utf8.ValidString(text) {
			return publishRequest{}, apiError(http.StatusBadRequest, "data is not valid UTF-8")
		}
		req.Data = jsonString(text)
	case hasJSON:
		text, err := single(form, "json")
		if err != nil {
			return publishRequest{}, err
		}
		req.Data = json.RawMessage(text)
	}
	return req, nil
}

// single returns a form field that must appear at most once.
func single(form url.Values, name string) (string, error) {
	switch v := form[name]; len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", apiError(http.StatusBadRequest, "field %s given more than once", name)
}

// jsonString encodes s as a JSON string without HTML escaping, so the
// subscriber sees exactly the text that was posted.
func jsonString(s string) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// decodeBroadcast parses a POST /api/broadcast body (JSON only):
// {"channels": [...], "data": <any JSON>, "key": "..."}.
func decodeBroadcast(contentType string, body []byte, maxData int) (broadcastRequest, error) {
	if err := onlyJSON(contentType, "broadcast takes a JSON body"); err != nil {
		return broadcastRequest{}, err
	}
	var in struct {
		Channels []string        `json:"channels"`
		Data     json.RawMessage `json:"data"`
		Key      string          `json:"key"`
	}
	if err := decodeStrict(body, &in, `{"channels":["a","b"],"data":{"text":"hi"}}`); err != nil {
		return broadcastRequest{}, err
	}
	switch n := len(in.Channels); {
	case n == 0:
		return broadcastRequest{}, apiError(http.StatusBadRequest, "channels is empty")
	case n > maxBroadcastChannels:
		return broadcastRequest{}, apiError(http.StatusBadRequest, "more than %d channels", maxBroadcastChannels)
	}
	seen := make(map[string]struct{}, len(in.Channels))
	for _, ch := range in.Channels {
		if _, dup := seen[ch]; dup {
			return broadcastRequest{}, apiError(http.StatusBadRequest, "channel %q listed twice", truncate(ch, 64))
		}
		seen[ch] = struct{}{}
	}
	data, err := checkData(in.Data, maxData)
	if err != nil {
		return broadcastRequest{}, err
	}
	if err := checkKey(in.Key); err != nil {
		return broadcastRequest{}, err
	}
	return broadcastRequest{Channels: in.Channels, Data: data, Key: in.Key}, nil
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// trailing data and text that is not valid UTF-8 (see
// session.ValidJSONText). example is a body of the right shape, shown when
// the body is not an object. The reasons name the field at fault, never a
// Go type.
func decodeStrict(body []byte, v any, example string) error {
	if !session.ValidJSONText(body) {
		return apiError(http.StatusBadRequest, "%s is not valid UTF-8 (JSON text must be UTF-8, and \\u escapes must not be lone surrogates)", invalidTextField(body))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiError(http.StatusBadRequest, "malformed JSON body: %s", jsonProblem(err, body, example))
	}
	if !session.JSONEnded(dec) {
		return apiError(http.StatusBadRequest, "malformed JSON body: trailing data after the object")
	}
	if name, dup := session.DuplicateName(body); dup {
		return apiError(http.StatusBadRequest, "malformed JSON body: the name %q appears twice (names match without regard to case)", truncate(name, 64))
	}
	return nil
}

// invalidTextField names the field of a JSON object body whose value fails
// session.ValidJSONText, or "the body" when it cannot tell.
func invalidTextField(body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return "the body"
	}
	for _, name := range []string{"channel", "channels", "data", "key", "user", "client"} {
		if raw, ok := fields[name]; ok && !session.ValidJSONText(raw) {
			return "field " + name
		}
	}
	return "the body"
}

// jsonProblem explains an encoding/json decoding error in the API's terms.
func jsonProblem(err error, body []byte, example string) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "the body is empty; send a JSON object such as " + example
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends in the middle of the JSON"
	case errors.As(err, &syntax):
		line, col := lineColumn(body, syntax.Offset)
		return fmt.Sprintf("%s at line %d, column %d", strings.TrimPrefix(syntax.Error(), "json: "), line, col)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Sprintf("the body is a JSON %s; send a JSON object such as %s", typ.Value, example)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s is a JSON %s; it must be %s", typ.Field, typ.Value, jsonKind(typ.Type))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + truncate(name, 64) + " (see docs/PROTOCOL.md for the fields)"
	}
	return "not a JSON object"
}

// jsonKind names what a Go type is in JSON.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ") + "s"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64:
		return "a number"
	}
	return "an object"
}

// lineColumn turns a byte offset in text into a 1-based line and column
// (in characters), for messages a person can follow in an editor.
func lineColumn(text []byte, offset int64) (line, col int) {
	if offset > int64(len(text)) {
		offset = int64(len(text))
	}
	before := text[:offset]
	line = 1 + bytes.Count(before, []byte("\n"))
	if i := bytes.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return line, utf8.RuneCount(before)
}

// checkData validates publication data and returns it compacted: a
// pretty-printed payload must not carry newlines into frames, and history
// should not store its whitespace.
func checkData(data json.RawMessage, maxData int) (json.RawMessage, error) {
	if len(data) == 0 {
		return nil, apiError(http.StatusBadRequest, "data is required")
	}
	// encoding/json accepts invalid UTF-8 inside strings, but a WebSocket
	// text frame carrying it makes browsers fail the connection.
	if !session.ValidJSONText(data) {
		return nil, apiError(http.StatusBadRequest, "data is not valid UTF-8")
	}
	var b bytes.Buffer
	b.Grow(len(data))
	if err := json.Compact(&b, data); err != nil {
		return nil, apiError(http.StatusBadRequest, "data is not valid JSON")
	}
	if b.Len() > maxData {
		return nil, apiError(http.StatusRequestEntityTooLarge, "data larger than %d bytes", maxData)
	}
	return b.Bytes(), nil
}

func checkKey(key string) error {
	if len(key) > session.MaxKeyLen {
		return apiError(http.StatusBadRequest, "key longer than %d bytes", session.MaxKeyLen)
	}
	if !utf8.ValidString(key) {
		return apiError(http.StatusBadRequest, "key is not valid UTF-8")
	}
	return nil
}

// truncate shortens outside input before it is echoed in a reason.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
