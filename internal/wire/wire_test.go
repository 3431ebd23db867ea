package wire

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeFrames(t *testing.T) {
	fs, err := DecodeFrames([]byte("{\"type\":\"message\",\"channel\":\"a\",\"offset\":3,\"epoch\":\"e\",\"data\":7}\n\n{\"type\":\"ping\"}"))
	if err != nil || len(fs) != 2 || fs[0].Channel != "a" || fs[0].Position() != (Position{Epoch: "e", Offset: 3}) || fs[1].Type != "ping" {
		t.Fatalf("got %+v, %v", fs, err)
	}
	if n, err := fs[0].Number(); n != 7 || err != nil {
		t.Errorf("Number = %d, %v, want 7", n, err)
	}
	if n, err := (Frame{Data: []byte(`{"n":9,"pad":"x"}`)}).Number(); n != 9 || err != nil {
		t.Errorf("Number of {n:9} = %d, %v", n, err)
	}
	if _, err := (Frame{Data: []byte(`"x"`)}).Number(); err == nil {
		t.Error("a string payload has a Number")
	}
	if _, err := DecodeFrames([]byte("{\"type\":\"ping\"}\n{\"type\":")); err == nil {
		t.Error("a cut frame decoded")
	}
}

func TestSubscribe(t *testing.T) {
	if got := string(Subscribe(2, "a", nil)); got != `{"channel":"a","id":2,"type":"subscribe"}` {
		t.Errorf("Subscribe = %s", got)
	}
	got := SubscribeAll([]string{"a", "b"}, map[string]Position{"b": {Epoch: "e", Offset: 4}})
	if len(got) != 2 || !strings.Contains(string(got[1]), `"since":{"epoch":"e","offset":4}`) || strings.Contains(string(got[0]), "since") {
		t.Errorf("SubscribeAll = %s", got)
	}
}

// TestSSEReader checks the browser's rules the clients rely on: data lines
// join, comments and CRs go, an id with NUL is ignored, a blank line alone
// is no event, and an unfinished event at the end is dropped.
func TestSSEReader(t *testing.T) {
	in := "retry: 1000\n\n: comment\nid: 1\ndata: a\r\ndata:b\n\n\n" +
		"id: x\x00y\ndata: c\n\nid\n\ndata: cut"
	r := NewSSEReader(strings.NewReader(in))
	want := []SSEEvent{
		{Retry: "1000"},
		{ID: "1", HasID: true, Data: "a\nb"},
		{Data: "c"},
		{ID: "", HasID: true},
	}
	for i, w := range want {
		ev, err := r.Next()
		if err != nil || !reflect.DeepEqual(ev, w) {
			t.Fatalf("event %d: %+v, %v, want %+v", i, ev, err, w)
		}
	}
	if ev, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last event: %+v, %v, want EOF", ev, err)
	}
}

func TestDecodePoll(t *testing.T) {
	for _, tc := range []struct {
		name, body, callback string
		ok                   bool
	}{
		{"answer", `{"messages":[{"type":"hello"}],"cursor":"c"}`, "", true},
		{"JSONP answer", `/**/cb({"messages":[],"cursor":"c"});`, "cb", true},
		{"JSONP error", `/**/cb({"error":{"code":400,"reason":"bad"}});`, "cb", true},
		{"JSONP of another callback", `/**/other({"messages":[],"cursor":"c"});`, "cb", false},
		{"JSON where JSONP is expected", `{"messages":[],"cursor":"c"}`, "cb", false},
		{"no cursor", `{"messages":[]}`, "", false},
		{"not JSON", `<html>`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := DecodePoll([]byte(tc.body), tc.callback)
			if (err == nil) != tc.ok {
				t.Fatalf("DecodePoll(%q) = %+v, %v", tc.body, a, err)
			}
			if tc.ok && a.Error == nil && (*a.Cursor != "c" || a.Messages == nil) {
				t.Errorf("DecodePoll(%q) = %+v", tc.body, a)
			}
		})
	}
}

func TestDecodeSockJS(t *testing.T) {
	sf, err := DecodeSockJS([]byte("a[\"{\\\"type\\\":\\\"ping\\\"}\",\"{\\\"type\\\":\\\"message\\\"}\\n{\\\"type\\\":\\\"message\\\"}\"]\n"))
	if err != nil || sf.Kind != 'a' || len(sf.Messages) != 2 || len(sf.Messages[1]) != 2 {
		t.Fatalf("a frame: %+v, %v", sf, err)
	}
	if sf, err := DecodeSockJS([]byte(`c[3000,"Go away!"]`)); err != nil || sf.Kind != 'c' || sf.Code != 3000 || sf.Reason != "Go away!" {
		t.Errorf("close frame: %+v, %v", sf, err)
	}
	for _, ok := range []string{"o", "h"} {
		if sf, err := DecodeSockJS([]byte(ok)); err != nil || sf.Kind != ok[0] {
			t.Errorf("%s: %+v, %v", ok, sf, err)
		}
	}
	for _, bad := range []string{"", "x", "a[1]", `a["{"]`, "c[3000]"} {
		if sf, err := DecodeSockJS([]byte(bad)); err == nil {
			t.Errorf("DecodeSockJS(%q) = %+v, want an error", bad, sf)
		}
	}
}
