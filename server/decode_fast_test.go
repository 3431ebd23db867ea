package server

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/session"
)

// FuzzDecodePublishFast is the differential check of the single-pass
// publish decoder: on every body and data limit, decodePublish (fast path
// first) must answer exactly what the strict path alone answers, the same
// request or the same error (status and reason), and whatever the fast
// path accepts the strict path must accept with the same channel, data and
// key. The data must not share memory with the body.
func FuzzDecodePublishFast(f *testing.F) {
	for _, body := range []string{
		`{"channel":"news","data":{"a":1},"key":"k"}`,
		`{"key":"k","data":[1,"x",null,true,false,-0.5e+3],"channel":"a:b#c"}`,
		"{\n  \"channel\": \"news\",\n  \"data\": {\n    \"a\": [ 1 , 2 ]\n  }\n}\n",
		`{"channel":"news","data":"caf\u00e9 \"q\" \\ \/ \b\f\n\r\t"}`,
		`{"channel":"news","data":"\ud83d\ude00"}`,
		`{"channel":"news","data":"\udc00"}`,
		`{"Channel":"news","data":1}`,
		`{"channel":"news","data":1,"channel":"admin"}`,
		`{"channel":"news","data":1}{"x":2}`,
		`{"channel":"news","data":01}`,
		`{"channel":"news","data":null,"key":null}`,
		`{"channel":"n\u0065ws","data":1}`,
		"{\"channel\":\"news\",\"data\":\"\xff\"}",
		`{"channel":"news","data":"` + strings.Repeat("x", 2000) + `"}`,
		`{"channel":"news","data":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`,
		` {"channel":"news","data":{},"key":""} `,
		`{"channel":"news","data":[],}`,
		``,
	} {
		f.Add([]byte(body), uint16(fuzzMaxData))
	}
	f.Add([]byte(`{"channel":"news","data":[1, 2, 3]}`), uint16(7))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		maxData := int(limit)
		body := bytes.Clone(in)
		fast, ok := decodePublishFast(body, maxData)
		strict, strictErr := decodePublishPaths(jsonType, body, maxData, false)
		got, err := decodePublish(jsonType, body, maxData)
		if !sameDecoding(got, err, strict, strictErr) {
			t.Fatalf("decodePublish %+v, %v; the strict path alone %+v, %v", got, err, strict, strictErr)
		}
		if !ok {
			return
		}
		if strictErr != nil || !sameDecoding(fast, nil, strict, nil) {
			t.Fatalf("fast path accepted %+v; the strict path %+v, %v", fast, strict, strictErr)
		}
		want := bytes.Clone(fast.Data)
		for i := range body {
			body[i] = 'x'
		}
		if !bytes.Equal(fast.Data, want) {
			t.Fatalf("data %q changed with the body", want)
		}
	})
}

// sameDecoding reports whether two decodePublish outcomes are the same: the
// same request, or errors with the same status and reason.
func sameDecoding(a publishRequest, aErr error, b publishRequest, bErr error) bool {
	if aErr != nil || bErr != nil {
		var ae, be *session.Error
		return errors.As(aErr, &ae) && errors.As(bErr, &be) && *ae == *be
	}
	return a.Channel == b.Channel && a.Key == b.Key && bytes.Equal(a.Data, b.Data)
}

// TestPublishFastPathTakesUsualBodies pins which bodies the single-pass
// decoder takes, with what values: the shapes backends send (any field
// order, white space, any data, no key or an empty one). Were it to fall
// back on them, publishing would still work but cost what it did before.
func TestPublishFastPathTakesUsualBodies(t *testing.T) {
	for _, tt := range []struct{ name, body, channel, data, key string }{
		{"bench body", `{"channel":"bench","data":{"s":1,"t":1764817200000000000,"x":"a typical small notification payload"}}`,
			"bench", `{"s":1,"t":1764817200000000000,"x":"a typical small notification payload"}`, ""},
		{"with key", `{"channel":"orders:42","data":{"id":42},"key":"order-42"}`, "orders:42", `{"id":42}`, "order-42"},
		{"fields in any order", `{"key":"k","data":[1,2],"channel":"a"}`, "a", `[1,2]`, "k"},
		{"pretty-printed", "{\n  \"channel\": \"news\",\n  \"data\": {\n    \"a\": [ 1 , \"b c\" ]\n  }\n}\n", "news", `{"a":[1,"b c"]}`, ""},
		{"scalar data", `{"channel":"a","data":-12.5e-3}`, "a", `-12.5e-3`, ""},
		{"null data", `{"channel":"a","data":null}`, "a", `null`, ""},
		{"escapes in data are kept", `{"channel":"a","data":"\"\\\/\b\f\n\r\t\u00e9"}`, "a", `"\"\\\/\b\f\n\r\t\u00e9"`, ""},
		{"UTF-8 in data and key", `{"channel":"a","data":"café ☕","key":"clé"}`, "a", `"café ☕"`, "clé"},
		{"empty key", `{"channel":"a","data":1,"key":""}`, "a", `1`, ""},
		{"empty containers", `{"channel":"a","data":{"x":[],"y":{}}}`, "a", `{"x":[],"y":{}}`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, ok := decodePublishFast([]byte(tt.body), fuzzMaxData)
			if !ok {
				t.Fatalf("fast path left %s to the strict path", tt.body)
			}
			if req.Channel != tt.channel || string(req.Data) != tt.data || req.Key != tt.key {
				t.Errorf("got %q %s %q, want %q %s %q", req.Channel, req.Data, req.Key, tt.channel, tt.data, tt.key)
			}
		})
	}
}

// TestPublishFastPathLeavesRefusalsToStrict holds that each property the
// strict path checks is checked by the fast path too, by leaving the body
// to the strict path, which refuses it with its reason: no refusal is
// written twice, and none depends on which path ran. The cases are the
// strict path's four passes and checkData's rescan, one by one.
func TestPublishFastPathLeavesRefusalsToStrict(t *testing.T) {
	for _, tt := range []struct{ name, body, reason string }{
		// session.ValidJSONText
		{"invalid UTF-8 in data", "{\"channel\":\"a\",\"data\":\"\xff\"}", "is not valid UTF-8"},
		{"invalid UTF-8 in key", "{\"channel\":\"a\",\"data\":1,\"key\":\"k\xfe\"}", "field key is not valid UTF-8"},
		{"lone surrogate in data", `{"channel":"a","data":"\udc00"}`, "field data is not valid UTF-8"},
		{"lone surrogate in key", `{"channel":"a","data":1,"key":"k\ud800"}`, "field key is not valid UTF-8"},
		// the json.Decoder with DisallowUnknownFields
		{"unknown field", `{"channel":"a","data":1,"kee":"x"}`, `unknown field "kee"`},
		{"syntax error", "{\"channel\":\"a\",\n\"data\":}", "line 2"},
		{"not an object", `[1,2]`, "JSON array"},
		{"channel not a string", `{"channel":5,"data":1}`, "field channel is a JSON number"},
		{"empty body", ``, "the body is empty"},
		{"number with a leading zero", `{"channel":"a","data":01}`, "malformed JSON body"},
		{"trailing comma", `{"channel":"a","data":[1,]}`, "malformed JSON body"},
		{"control character in a string", "{\"channel\":\"a\",\"data\":\"a\tb\"}", "malformed JSON body"},
		// session.JSONEnded
		{"trailing object", `{"channel":"a","data":1}{"x":2}`, "trailing data after the object"},
		{"stray brace", `{"channel":"a","data":1}}`, "trailing data after the object"},
		// session.DuplicateName
		{"name twice", `{"channel":"a","data":1,"channel":"b"}`, `the name "channel" appears twice`},
		{"name twice, other case", `{"channel":"a","data":1,"Channel":"b"}`, `the name "Channel" appears twice`},
		// decodePublish's own checks, and checkData's rescan
		{"no channel", `{"data":1}`, "empty channel name"},
		{"bad channel", `{"channel":"a b","data":1}`, "invalid character ' '"},
		{"no data", `{"channel":"a"}`, "data is required"},
		{"data too large", `{"channel":"a","data":"` + strings.Repeat("x", fuzzMaxData) + `"}`, "data larger than"},
		{"key too long", `{"channel":"a","data":1,"key":"` + strings.Repeat("k", session.MaxKeyLen+1) + `"}`, "key longer than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if req, ok := decodePublishFast([]byte(tt.body), fuzzMaxData); ok {
				t.Fatalf("fast path accepted %+v", req)
			}
			_, err := decodePublish(jsonType, []byte(tt.body), fuzzMaxData)
			var e *session.Error
			if !errors.As(err, &e) || e.Code/100 != 4 || !strings.Contains(e.Reason, tt.reason) {
				t.Fatalf("error %v, want a 4xx whose reason has %q", err, tt.reason)
			}
		})
	}
}

// TestPublishFastPathLeavesOddValidBodies: bodies the strict path accepts
// but the fast path does not read itself are still published, with the
// strict path's values.
func TestPublishFastPathLeavesOddValidBodies(t *testing.T) {
	for _, tt := range []struct{ name, body, channel, data, key string }{
		{"escaped channel", `{"channel":"n\u0065ws","data":1}`, "news", `1`, ""},
		{"escaped key", `{"channel":"a","data":1,"key":"k\"1"}`, "a", `1`, `k"1`},
		{"null key", `{"channel":"a","data":1,"key":null}`, "a", `1`, ""},
		{"name in another case", `{"Channel":"a","DATA":1}`, "a", `1`, ""},
		{"surrogate pair in data", `{"channel":"a","data":"\ud83d\ude00"}`, "a", `"\ud83d\ude00"`, ""},
		{"deep data", `{"channel":"a","data":` + strings.Repeat("[", 80) + strings.Repeat("]", 80) + `}`,
			"a", strings.Repeat("[", 80) + strings.Repeat("]", 80), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := decodePublishFast([]byte(tt.body), fuzzMaxData); ok {
				t.Fatalf("fast path took %s", tt.body)
			}
			req, err := decodePublish(jsonType, []byte(tt.body), fuzzMaxData)
			if err != nil || req.Channel != tt.channel || string(req.Data) != tt.data || req.Key != tt.key {
				t.Fatalf("got %+v, %v", req, err)
			}
		})
	}
}

// FuzzDecodeBatchFast is the differential check of the single-pass batch
// decoder, as FuzzDecodePublishFast is of the publish one: decodeBatch
// (fast path first) must answer exactly what the strict path alone
// answers, item by item or error for error, and whatever the fast path
// accepts the strict path must accept the same.
func FuzzDecodeBatchFast(f *testing.F) {
	for _, body := range []string{
		`{"publications":[{"channel":"a","data":{"x":1},"key":"k"},{"channel":"a","data":2}]}`,
		" {\n \"publications\" : [ {\"data\":[1, 2],\"channel\":\"b\"} ] }\n",
		`{"publications":[{"channel":"a","data":1},{"channel":"bad channel","data":1}]}`,
		`{"publications":[{"channel":"a","data":1,"Channel":"b"}]}`,
		`{"publications":[{"channel":"a","data":1}],"publications":[]}`,
		`{"Publications":[{"channel":"a","data":1}]}`,
		`{"publications":[{"channel":"a","data":1},]}`,
		`{"publications":[{"channel":"a","data":"\udc00"}]}`,
		`{"publications":[1,null,"x"]}`,
		`{"publications":[]}`,
		`{"publications":null}`,
		`{"publications":[{"channel":"a","data":1}]}x`,
	} {
		f.Add([]byte(body), uint16(fuzzMaxData))
	}
	f.Add([]byte(`{"publications":[{"channel":"a","data":[1, 2, 3]}]}`), uint16(7))
	f.Fuzz(func(t *testing.T, body []byte, limit uint16) {
		maxData := int(limit)
		fast, ok := decodeBatchFast(body, maxData)
		strict, strictErr := decodeBatchPaths(jsonType, body, maxData, false)
		got, err := decodeBatch(jsonType, body, maxData)
		if !sameBatch(got, err, strict, strictErr) {
			t.Fatalf("decodeBatch %+v, %v; the strict path alone %+v, %v", got, err, strict, strictErr)
		}
		if ok && (strictErr != nil || !sameBatch(fast, nil, strict, nil)) {
			t.Fatalf("fast path accepted %+v; the strict path %+v, %v", fast, strict, strictErr)
		}
	})
}

// sameBatch is sameDecoding for batches: the same items, or errors with the
// same status and reason.
func sameBatch(a batchRequest, aErr error, b batchRequest, bErr error) bool {
	if aErr != nil || bErr != nil {
		return sameDecoding(publishRequest{}, aErr, publishRequest{}, bErr)
	}
	if len(a.Publications) != len(b.Publications) {
		return false
	}
	for i := range a.Publications {
		if !sameDecoding(a.Publications[i], nil, b.Publications[i], nil) {
			return false
		}
	}
	return true
}

// TestBatchFastPathTakesUsualBodies: the batches backends send, compact or
// pretty-printed, up to the 1,000-item limit, take the single-pass path
// with the strict path's values; the 1,001st item and an empty list are
// left to the strict path, which refuses them.
func TestBatchFastPathTakesUsualBodies(t *testing.T) {
	items := func(n int, sep string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `{"channel":"orders:` + strings.Repeat("7", 1+i%3) + `","data":{"id":1,"state":"cancelled"},"key":"k-` + strings.Repeat("x", i%5) + `"}`
		}
		return `{"publications":[` + strings.Join(parts, ","+sep) + `]}`
	}
	for _, body := range []string{items(1, ""), items(100, ""), items(maxBatchPublications, ""), items(3, "\n  ")} {
		fast, ok := decodeBatchFast([]byte(body), fuzzMaxData)
		if !ok {
			t.Fatalf("fast path left %.80q… to the strict path", body)
		}
		strict, err := decodeBatchPaths(jsonType, []byte(body), fuzzMaxData, false)
		if err != nil || !sameBatch(fast, nil, strict, nil) {
			t.Fatalf("fast %+v; strict %+v, %v", fast.Publications[0], strict, err)
		}
	}
	for _, body := range []string{items(maxBatchPublications+1, ""), `{"publications":[]}`} {
		if _, ok := decodeBatchFast([]byte(body), fuzzMaxData); ok {
			t.Errorf("fast path took %.60q…", body)
		}
		if _, err := decodeBatch(jsonType, []byte(body), fuzzMaxData); err == nil {
			t.Errorf("decodeBatch accepted %.60q…", body)
		}
	}
}
