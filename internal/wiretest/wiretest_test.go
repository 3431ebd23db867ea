package wiretest

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/internal/wire"
)

func TestWSURL(t *testing.T) {
	for base, want := range map[string]string{
		"http://127.0.0.1:8080":  "ws://127.0.0.1:8080/connect/ws",
		"https://push.example":   "wss://push.example/connect/ws",
		"http://[::1]:9000/base": "ws://[::1]:9000/base/connect/ws",
	} {
		if got := WSURL(base, "/connect/ws"); got != want {
			t.Errorf("WSURL(%q) = %q, want %q", base, got, want)
		}
	}
}

// NextOf skips frames of other types, and says why it found none: the
// stream's error, or ErrTimeout.
func TestStreamNextOf(t *testing.T) {
	s := NewStream(func() {})
	s.Push(wire.Frame{Type: "ping"})
	s.Push(wire.Frame{Type: "reply", ID: 7})
	if f, err := s.NextOf("reply", WaitLimit); err != nil || f.ID != 7 {
		t.Fatalf("NextOf: %+v, %v", f, err)
	}
	if _, err := s.NextOf("reply", 0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("NextOf on an idle stream: %v, want ErrTimeout", err)
	}
	s.Push(wire.Frame{Type: "ping"})
	s.Fail(ClosedError{3001})
	var ce ClosedError
	if _, err := s.NextOf("reply", WaitLimit); !errors.As(err, &ce) || ce.Code != 3001 {
		t.Fatalf("NextOf on an ended stream: %v, want its ClosedError", err)
	}
}

// OpenSockJSXHR reads the frames of each SockJS message, skips the
// prelude, open and heartbeat frames, and ends with the close frame's code.
func TestOpenSockJSXHR(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/connect/sockjs/") {
			http.Error(w, "no such session", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, strings.Repeat("h", 2048)+"\no\n")
		fmt.Fprint(w, `a["{\"type\":\"hello\"}\n{\"type\":\"reply\",\"id\":1}","{\"type\":\"reply\",\"id\":2}"]`+"\nh\n")
		fmt.Fprint(w, `c[3001,"shutdown"]`+"\n")
	}))
	defer srv.Close()
	s, err := OpenSockJSXHR(srv.Client(), srv.URL+"/connect/sockjs/000/abc")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	for {
		f, err := s.Next(WaitLimit)
		if err != nil {
			var ce ClosedError
			if !errors.As(err, &ce) || ce.Code != 3001 {
				t.Fatalf("stream ended with %v, want the close frame's 3001", err)
			}
			break
		}
		got = append(got, fmt.Sprintf("%s%d", f.Type, f.ID))
	}
	if strings.Join(got, " ") != "hello0 reply1 reply2" {
		t.Fatalf("frames %v", got)
	}

	// A refusal is an HTTPError that quotes the body.
	_, err = OpenSockJSXHR(srv.Client(), srv.URL+"/elsewhere")
	var he HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusNotFound || !strings.Contains(err.Error(), "no such session") {
		t.Fatalf("refusal: %v, want HTTP 404 quoting the body", err)
	}
}
