package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// edgeBodies are publish bodies at the edges where a one-pass decoder and
// encoding/json could part: numbers, nesting around ScanJSONValue's depth
// limit, escapes and surrogates in names and values, BOMs, nulls, names
// given twice in another case or escaped, trailing bytes, and data, keys
// and channels at their limits (maxData is edgeMaxData).
func edgeBodies() []string {
	const maxData = edgeMaxData
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	nestObj := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	pub := func(data string) string { return `{"channel":"a","data":` + data + `}` }
	exact := `"` + strings.Repeat("x", maxData-2) + `"` // maxData bytes compact
	var bodies []string
	for _, num := range []string{"-0", "0", "-0.0", "1e999", "-1e-999", "1E+2", "1e", "1.", ".1", "-", "--1", "+1",
		"01", "-01", "00", "1.0e", "1e+", "0x10", "1_000", "Infinity", "NaN", "1.5e" + strings.Repeat("9", 400),
		strings.Repeat("9", 1000), "0.", "-.5", "1e01", "1.e1", "1 2"} {
		bodies = append(bodies, pub(num), pub("["+num+"]"), pub(`{"n":`+num+`}`))
	}
	for _, d := range []int{62, 63, 64, 65, 66, 127, 128} {
		bodies = append(bodies, pub(nest(d)), pub(nestObj(d)), pub(strings.Repeat("[", d)+strings.Repeat("]", d-1)))
	}
	bodies = append(bodies,
		// escapes and surrogates, in values and in names
		pub(`"\ud83d\ude00"`), pub(`"\ud83d"`), pub(`"\ude00"`), pub(`"\ud83d\u0041"`), pub(`"\uD83D\uDE00"`),
		pub(`"\u0000"`), pub(`"\u00"`), pub(`"\x41"`), pub(`"\'"`), pub(`"\U0041"`), pub(`"\\u"`), pub(`"\\\ud800"`),
		pub(`{"\ud800":1}`), pub(`{"\u0061":1,"a":2}`), pub("\"\u2028\u2029\""), pub("\"\xed\xa0\x80\""),
		pub("\"\xef\xbf\xbd\""), pub("\"\xc0\xaf\""), pub("\"\xf4\x90\x80\x80\""),
		`{"ch\u0061nnel":"a","data":1}`, `{"channel":"a","d\u0061ta":1}`, `{"channel":"a","data":1,"k\u0065y":"x"}`,
		`{"channel":"a","data":1,"ch\u0061nnel":"b"}`, `{"channel":"a","data":1,"CHANNEL":"b"}`,
		`{"channel":"a","data":1,"Data":2}`, `{"channel":"a","data":1,"key":"x","KEY":"y"}`,
		`{"channel":"a","data":1,"ke\u0079":"x","key":"y"}`, "{\"channel\":\"a\",\"data\":1,\"\u212aey\":\"x\"}",
		"{\"channel\":\"a\",\"data\":1,\"key\":\"x\",\"\u212aey\":\"y\"}", `{"channel":"a","data":1,"":1}`,
		`{"channel":"a\/b","data":1}`, `{"channel":"a","data":1,"key":"\/"}`,
		// BOMs, nulls, trailing bytes
		"\ufeff"+pub("1"), pub("1")+"\ufeff", `{"channel":null,"data":1}`, `{"channel":"a","data":null}`,
		`{"channel":"a","data":1,"key":null}`, `{"channel":"a","data":null,"key":null}`, `null`, `{}`, `[]`, `""`,
		pub("1")+" \t\r\n", pub("1")+"\x00", pub("1")+"\n\x00", "\x00"+pub("1"), pub("1")+"\f", pub("1")+"\v",
		pub("1")+"\u00a0", "\r\n"+pub("1"), pub("1")+",", pub("1")+"}", pub("1")+"]", pub("1")+"null",
		`{"channel":"a","data":1,}`, `{,"channel":"a","data":1}`, `{"channel":"a""data":1}`, `{"channel":"a",,"data":1}`,
		`{"channel":"a","data"1}`, `{"channel":"a","data"::1}`, `{"channel":"a","data":}`, `{"channel":"a","data":1`,
		`{"channel":"a","data":tru}`, `{"channel":"a","data":truee}`, `{"channel":"a","data":nul}`, `{"channel":"a","data":True}`,
		// data at maxData, compact and not
		pub(exact), pub(`"`+strings.Repeat("x", maxData-1)+`"`), pub(`[`+exact[:len(exact)-2]+`"]`),
		pub("[ "+`"`+strings.Repeat("x", maxData-4)+`"`+" ]"), pub("[ "+`"`+strings.Repeat("x", maxData-3)+`"`+" ]"),
		pub(`"`+strings.Repeat("é", (maxData-2)/2)+`"`), pub(`"`+strings.Repeat(`\n`, (maxData-2)/2)+`"`),
		pub(`"`+strings.Repeat(`\n`, (maxData-2)/2)+`x"`),
		// keys at MaxKeyLen, in bytes, with multi-byte runes
		`{"channel":"a","data":1,"key":"`+strings.Repeat("k", session.MaxKeyLen)+`"}`,
		`{"channel":"a","data":1,"key":"`+strings.Repeat("k", session.MaxKeyLen+1)+`"}`,
		`{"channel":"a","data":1,"key":"`+strings.Repeat("é", session.MaxKeyLen/2)+`"}`,
		`{"channel":"a","data":1,"key":"`+strings.Repeat("é", session.MaxKeyLen/2)+`k"}`,
		`{"channel":"a","data":1,"key":"k`+strings.Repeat("€", session.MaxKeyLen/3)+`"}`,
		`{"channel":"a","data":1,"key":"`+strings.Repeat("€", session.MaxKeyLen/3+1)+`"}`,
		`{"channel":"a","data":1,"key":"`+strings.Repeat("k", session.MaxKeyLen-1)+`\n"}`,
		`{"channel":"a","data":1,"key":"`+strings.Repeat(`\u00e9`, session.MaxKeyLen/2)+`"}`,
		`{"channel":"a","data":1,"key":"`+strings.Repeat(`\u00e9`, session.MaxKeyLen/2+1)+`"}`,
		// channel names at the limit
		`{"channel":"`+strings.Repeat("c", session.MaxChannelLen)+`","data":1}`,
		`{"channel":"`+strings.Repeat("c", session.MaxChannelLen+1)+`","data":1}`,
		`{"channel":"`+strings.Repeat(`\u0063`, session.MaxChannelLen)+`","data":1}`,
		`{"channel":"é","data":1}`, `{"channel":"","data":1}`, `{"channel":"a b","data":1}`, `{"channel":"a<b>&","data":1}`,
		`{"channel":1,"data":1}`, `{"channel":["a"],"data":1}`, `{"channel":"a","data":1,"key":1}`,
	)
	return bodies
}

const edgeMaxData = 64

// TestPublishFastPathEdgeInputs compares decodePublish with its strict
// path alone on edgeBodies: the same request, or the same status and
// reason.
func TestPublishFastPathEdgeInputs(t *testing.T) {
	for _, body := range edgeBodies() {
		fast, fastErr := decodePublishPaths(jsonType, []byte(body), edgeMaxData, true)
		strict, strictErr := decodePublishPaths(jsonType, []byte(body), edgeMaxData, false)
		if !sameDecoding(fast, fastErr, strict, strictErr) {
			t.Errorf("%q: with the fast path %+v, %v; strict %+v, %v", body, fast, fastErr, strict, strictErr)
		}
	}
}

// TestBatchFastPathEdgeInputs does the same for decodeBatch, each edge
// body as an item after a good one, and alone.
func TestBatchFastPathEdgeInputs(t *testing.T) {
	good := `{"channel":"g","data":0}`
	for _, item := range edgeBodies() {
		for _, body := range []string{
			`{"publications":[` + item + `]}`,
			`{"publications":[` + good + `,` + item + `]}`,
			"{\"publications\":[" + item + ",\n" + good + "]}",
		} {
			fast, fastErr := decodeBatchPaths(jsonType, []byte(body), edgeMaxData, true)
			strict, strictErr := decodeBatchPaths(jsonType, []byte(body), edgeMaxData, false)
			if !sameBatch(fast, fastErr, strict, strictErr) {
				t.Errorf("%q: with the fast path %+v, %v; strict %+v, %v", body, fast, fastErr, strict, strictErr)
			}
		}
	}
	for _, body := range []string{
		"\ufeff{\"publications\":[" + good + "]}", `{"publications":[` + good + "]}\x00", `{"publications":[` + good + "]} \n",
		`{"publications":[` + good + `],"publications":[` + good + `]}`, `{"public\u0061tions":[` + good + `]}`,
		`{"PUBLICATIONS":[` + good + `]}`, `{"publications":[` + good + `],"x":1}`, `{"publications":{}}`,
		`{"publications":[` + good + `,]}`, `{"publications":[,` + good + `]}`, `{"publications":[` + good + ` ` + good + `]}`,
		`{"publications":[` + strings.TrimSuffix(strings.Repeat(good+",", maxBatchPublications), ",") + `]}`,
		`{"publications":[` + strings.TrimSuffix(strings.Repeat(good+",", maxBatchPublications+1), ",") + `]}`,
		`{"publications":[null]}`, `{"publications":[` + good + `,null]}`, `{"publications":[[]]}`,
	} {
		fast, fastErr := decodeBatchPaths(jsonType, []byte(body), edgeMaxData, true)
		strict, strictErr := decodeBatchPaths(jsonType, []byte(body), edgeMaxData, false)
		if !sameBatch(fast, fastErr, strict, strictErr) {
			t.Errorf("%.200q: with the fast path %+v, %v; strict %+v, %v", body, len(fast.Publications), fastErr, len(strict.Publications), strictErr)
		}
	}
}

// TestScanJSONValueEdgeInputs holds session.ScanJSONValue to encoding/json
// on the data of edgeBodies: what it accepts, json.Valid accepts, and a
// decoder stops at the same byte.
func TestScanJSONValueEdgeInputs(t *testing.T) {
	for _, body := range edgeBodies() {
		i := strings.Index(body, `"data":`)
		if i < 0 {
			continue
		}
		b := []byte(body[i+len(`"data":`):])
		end, _, ok := session.ScanJSONValue(b)
		if !ok {
			continue
		}
		if !json.Valid(b[:end]) || !session.ValidJSONText(b[:end]) {
			t.Errorf("ScanJSONValue accepted %q", b[:end])
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil || dec.InputOffset() != int64(end) {
			t.Errorf("ScanJSONValue(%q) ended at %d; a decoder at %d (%v)", b, end, dec.InputOffset(), err)
		}
	}
}

// TestPublishAnswerAsCJSON holds writePublishAnswer to what c.JSON writes,
// header and bytes, for channels and epochs JSON would escape or not.
func TestPublishAnswerAsCJSON(t *testing.T) {
	e := echo.New()
	for _, s := range []string{"a", "news:1#x.y@z=w_-", "<b>&", "a\u2028b\u2029", "café", "a\"b\\c", "\x7f", "\x00\x1f", "\xff", ""} {
		for _, q := range []string{"", "?pretty", "?x=1"} {
			a := transports.PublishAnswer{Channel: s, Offset: 18446744073709551615, Epoch: s}
			req := httptest.NewRequest(http.MethodPost, "/api/publish"+q, nil)
			got, want := httptest.NewRecorder(), httptest.NewRecorder()
			if err := writePublishAnswer(e.NewContext(req, got), a); err != nil {
				t.Fatal(err)
			}
			if err := e.NewContext(req, want).JSON(http.StatusOK, a); err != nil {
				t.Fatal(err)
			}
			if got.Body.String() != want.Body.String() || got.Code != want.Code ||
				got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Errorf("%q%s: wrote %d %q %q; c.JSON %d %q %q", s, q, got.Code, got.Header().Get("Content-Type"), got.Body,
					want.Code, want.Header().Get("Content-Type"), want.Body)
			}
		}
	}
}
