package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestCentrifugoHandshake(t *testing.T) {
	ch := `bench-1."quoted"`
	lines := strings.Split(string(centrifugoHandshake(ch, nil)), "\n")
	if len(lines) != 2 {
		t.Fatalf("handshake %q: %d lines, want connect and subscribe", lines, len(lines))
	}
	var connect struct {
		ID      uint32          `json:"id"`
		Connect json.RawMessage `json:"connect"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &connect); err != nil || connect.ID != 1 || string(connect.Connect) != "{}" {
		t.Errorf("connect command %s: %+v, %v", lines[0], connect, err)
	}
	var sub struct {
		ID        uint32 `json:"id"`
		Subscribe struct {
			Channel string `json:"channel"`
		} `json:"subscribe"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &sub); err != nil || sub.ID != 2 || sub.Subscribe.Channel != ch {
		t.Errorf("subscribe command %s: %+v, %v", lines[1], sub, err)
	}
	if strings.Contains(lines[1], "recover") {
		t.Errorf("a fresh subscribe asks to recover: %s", lines[1])
	}
	// A resume asks to recover from the position.
	resume := strings.Split(string(centrifugoHandshake(ch, &centrifugoPosition{Epoch: `E"1`, Offset: 41})), "\n")
	var rs struct {
		Subscribe struct {
			Channel string `json:"channel"`
			Recover bool   `json:"recover"`
			Epoch   string `json:"epoch"`
			Offset  uint64 `json:"offset"`
		} `json:"subscribe"`
	}
	if err := json.Unmarshal([]byte(resume[1]), &rs); err != nil || rs.Subscribe.Channel != ch || !rs.Subscribe.Recover ||
		rs.Subscribe.Epoch != `E"1` || rs.Subscribe.Offset != 41 {
		t.Errorf("resuming subscribe command %s: %+v, %v", resume[1], rs, err)
	}
}

func TestScanCentrifugoOffset(t *testing.T) {
	tests := []struct {
		pub    string
		offset uint64
		ok     bool
	}{
		{`{"push":{"channel":"c","pub":{"data":{"s":1,"t":2},"offset":17}}}`, 17, true},
		{`{"data":{"s":1,"t":2},"offset":3}`, 3, true},
		{`{"push":{"channel":"c","pub":{"data":{"s":1,"t":2}}}}`, 0, false},
		{`{"data":{"s":1,"t":2},"offset":-3}`, 0, false},
	}
	for _, tt := range tests {
		if got, ok := scanCentrifugoOffset([]byte(tt.pub)); got != tt.offset || ok != tt.ok {
			t.Errorf("scanCentrifugoOffset(%s) = %d, %v; want %d, %v", tt.pub, got, ok, tt.offset, tt.ok)
		}
	}
}

func TestCentrifugoUniConnect(t *testing.T) {
	ch := `bench-2.a\b`
	var req struct {
		Subs map[string]json.RawMessage `json:"subs"`
	}
	b := centrifugoUniConnect(ch)
	if err := json.Unmarshal(b, &req); err != nil || len(req.Subs) != 1 || string(req.Subs[ch]) != "{}" {
		t.Errorf("uni connect %s: %+v, %v", b, req, err)
	}
}

func TestParseCentrifugo(t *testing.T) {
	pub := `{"push":{"channel":"c","pub":{"data":{"s":7,"t":42,"x":"y"},"offset":9}}}`
	tests := []struct {
		name    string
		line    string
		want    centrifugoFrame
		wantErr bool
	}{
		{"ping", `{}`, centrifugoFrame{Kind: centrifugoPing}, false},
		{"ping with spaces", " {}\r", centrifugoFrame{Kind: centrifugoPing}, false},
		{"publication", pub, centrifugoFrame{Kind: centrifugoPublication, Seq: 7, T: 42}, false},
		{"uni publication", `{"channel":"c","pub":{"data":{"s":3,"t":5},"offset":1}}`, centrifugoFrame{Kind: centrifugoPublication, Seq: 3, T: 5}, false},
		{"connect reply", `{"id":1,"connect":{"client":"x","version":"6","ping":25,"pong":true}}`, centrifugoFrame{Kind: centrifugoReply, ID: 1}, false},
		{"subscribe reply", `{"id":2,"subscribe":{"recoverable":true,"epoch":"e","offset":3}}`,
			centrifugoFrame{Kind: centrifugoReply, ID: 2, Sub: &centrifugoSubscribed{Epoch: "e", Offset: 3}}, false},
		{"recovered", `{"id":2,"subscribe":{"epoch":"e","publications":[{"data":{"s":4,"t":1},"offset":4}],"recovered":true,"offset":4}}`,
			centrifugoFrame{Kind: centrifugoReply, ID: 2, Sub: &centrifugoSubscribed{Epoch: "e", Offset: 4, Recovered: true,
				Publications: []json.RawMessage{json.RawMessage(`{"data":{"s":4,"t":1},"offset":4}`)}}}, false},
		{"refused", `{"id":2,"error":{"code":103,"message":"permission denied"}}`,
			centrifugoFrame{Kind: centrifugoReply, ID: 2, Code: 103, Reason: "permission denied"}, false},
		{"uni disconnect", `{"disconnect":{"code":3001,"reason":"shutdown"}}`,
			centrifugoFrame{Kind: centrifugoDisconnect, Code: 3001, Reason: "shutdown"}, false},
		{"disconnect push", `{"push":{"disconnect":{"code":3012,"reason":"no pong"}}}`,
			centrifugoFrame{Kind: centrifugoDisconnect, Code: 3012, Reason: "no pong"}, false},
		{"uni connect push", `{"connect":{"client":"x","subs":{"c":{"recoverable":true}}}}`, centrifugoFrame{Kind: centrifugoOther}, false},
		{"join", `{"push":{"channel":"c","join":{"info":{"client":"x"}}}}`, centrifugoFrame{Kind: centrifugoOther}, false},
		{"foreign publication", `{"push":{"channel":"c","pub":{"data":{"hello":1}}}}`, centrifugoFrame{Kind: centrifugoOther}, false},
		{"payload in a channel name is not a publication", `{"push":{"channel":"{\"s\":1,\"t\":2}"}}`, centrifugoFrame{Kind: centrifugoOther}, false},
		{"error without id", `{"error":{"code":100,"message":"internal"}}`, centrifugoFrame{}, true},
		{"empty", ``, centrifugoFrame{}, true},
		{"not an object", `[1,2]`, centrifugoFrame{}, true},
		{"truncated", `{"id":1,"connect":`, centrifugoFrame{}, true},
		{"too long", `{"x":"` + strings.Repeat("a", centrifugoMaxLine) + `"}`, centrifugoFrame{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCentrifugo([]byte(tt.line))
			if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseCentrifugo(%.80s) = %+v, %v; want %+v, error %v", tt.line, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCentrifugoAPIError(t *testing.T) {
	if err := centrifugoAPIError([]byte(`{"result":{"offset":1,"epoch":"e"}}`)); err != nil {
		t.Errorf("a result is an error: %v", err)
	}
	err := centrifugoAPIError([]byte(`{"error":{"code":102,"message":"unknown channel"}}`))
	if err == nil || !strings.Contains(err.Error(), "102") || !strings.Contains(err.Error(), "unknown channel") {
		t.Errorf("error answer: %v", err)
	}
	if err := centrifugoAPIError([]byte(`{}`)); err != nil {
		t.Errorf("an empty answer is an error: %v", err)
	}
	if err := centrifugoAPIError([]byte(`<html>`)); err == nil {
		t.Error("an answer that is not JSON is not an error")
	}
}

func FuzzParseCentrifugo(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"push":{"channel":"c","pub":{"data":{"s":7,"t":42,"x":"y"},"offset":9}}}`))
	f.Add([]byte(`{"id":2,"error":{"code":103,"message":"permission denied"}}`))
	f.Add([]byte(`{"disconnect":{"code":3001,"reason":"shutdown"}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		fr, err := parseCentrifugo(line)
		if err != nil {
			if !reflect.DeepEqual(fr, centrifugoFrame{}) {
				t.Fatalf("error %v with a frame %+v", err, fr)
			}
			return
		}
		switch fr.Kind {
		case centrifugoPublication:
			// A publication is what the other servers' payloads are.
			if seq, at, ok := scanPayload(line); !ok || seq != fr.Seq || at != fr.T {
				t.Fatalf("publication %+v, but scanPayload(%q) = %d, %d, %v", fr, line, seq, at, ok)
			}
		case centrifugoPing:
			if !isCentrifugoPing(line) {
				t.Fatalf("ping from %q", line)
			}
		case centrifugoReply:
			if fr.ID == 0 {
				t.Fatalf("reply without an id from %q", line)
			}
		}
	})
}

// fakeCentrifugo serves one WebSocket connection through script, which
// plays the server's side.
func fakeCentrifugo(t *testing.T, script func(ws *websocket.Conn) error) (*Target, <-chan error) {
	t.Helper()
	done := make(chan error, 1)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/connection/websocket" {
			http.NotFound(w, r)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			done <- err
			return
		}
		defer ws.Close()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		done <- script(ws)
	}))
	t.Cleanup(srv.Close)
	target := &Target{Kind: KindCentrifugo, URL: srv.URL}
	if err := target.validate(); err != nil {
		t.Fatal(err)
	}
	return target, done
}

// readHandshake reads the client's first message and checks it is the
// connect and subscribe commands for ch (from since, if not nil).
func readHandshake(ws *websocket.Conn, ch string, since *centrifugoPosition) error {
	_, msg, err := ws.ReadMessage()
	if err != nil {
		return fmt.Errorf("read handshake: %w", err)
	}
	if !bytes.Equal(msg, centrifugoHandshake(ch, since)) {
		return fmt.Errorf("handshake %q", msg)
	}
	return nil
}

func centrifugoPub(seq int64) string {
	return fmt.Sprintf(`{"push":{"channel":"c","pub":{"data":%s,"offset":%d}}}`, appendPayload(nil, seq, 1000), seq)
}

// TestCentrifugoClientWS drives the bench's WebSocket client against a
// scripted server: replies and publications batched in one message are all
// taken, a ping is answered with a pong, gaps and duplicates are counted,
// and the close code is kept as the disconnect code.
func TestCentrifugoClientWS(t *testing.T) {
	target, done := fakeCentrifugo(t, func(ws *websocket.Conn) error {
		if err := readHandshake(ws, "c", nil); err != nil {
			return err
		}
		send := func(lines ...string) error {
			return ws.WriteMessage(websocket.TextMessage, []byte(strings.Join(lines, "\n")))
		}
		if err := send(`{"id":1,"connect":{"client":"x","ping":25,"pong":true}}`); err != nil {
			return err
		}
		// The subscribe reply with the warm-up and the first publication after it.
		if err := send(`{"id":2,"subscribe":{"recoverable":true,"epoch":"e"}}`, centrifugoPub(0), centrifugoPub(1)); err != nil {
			return err
		}
		if err := send(centrifugoPub(2), centrifugoPub(3), `{}`); err != nil {
			return err
		}
		_, pong, err := ws.ReadMessage()
		if err != nil || string(pong) != "{}" {
			return fmt.Errorf("pong %q, %v", pong, err)
		}
		// A duplicate, then a gap of one.
		if err := send(centrifugoPub(3), centrifugoPub(5)); err != nil {
			return err
		}
		return ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(3012, "no pong"))
	})
	rec := newRecorder()
	c := newClient(target, TransportWS, "c", rec, newDialer(target, 0))
	if err := c.connect(context.Background(), false); err != nil {
		t.Fatalf("connect: %v", err)
	}
	c.start(context.Background())
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not end when the server closed")
	}
	if !c.warm.Load() || c.count.Load() != 4 || c.last.Load() != 5 || c.gaps.Load() != 1 || c.dups.Load() != 1 {
		t.Errorf("warm %v, count %d, last %d, gaps %d, dups %d; want true, 4, 5, 1, 1",
			c.warm.Load(), c.count.Load(), c.last.Load(), c.gaps.Load(), c.dups.Load())
	}
	if c.disconnect.Load() != 3012 {
		t.Errorf("disconnect code %d, want 3012", c.disconnect.Load())
	}
	if n, _ := rec.errs.snapshot(); n != 1 {
		t.Errorf("%d errors, want the one for being disconnected", n)
	}
	c.stop()
}

// TestCentrifugoClientRefused: a refused subscribe fails the connect with
// the server's code and message.
func TestCentrifugoClientRefused(t *testing.T) {
	target, done := fakeCentrifugo(t, func(ws *websocket.Conn) error {
		if err := readHandshake(ws, "c", nil); err != nil {
			return err
		}
		reply := `{"id":1,"connect":{"client":"x"}}` + "\n" + `{"id":2,"error":{"code":103,"message":"permission denied"}}`
		if err := ws.WriteMessage(websocket.TextMessage, []byte(reply)); err != nil {
			return err
		}
		_, _, _ = ws.ReadMessage() // until the client closes
		return nil
	})
	c := newClient(target, TransportWS, "c", newRecorder(), newDialer(target, 0))
	err := c.connect(context.Background(), false)
	if err == nil || !strings.Contains(err.Error(), "103 permission denied") {
		t.Errorf("connect: %v, want the refusal", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}

// TestCentrifugoClientSSE drives the SSE client against a scripted uni SSE
// stream: the connect request asks for the channel, publications are
// counted, pings need no answer, and a disconnect push ends the stream
// with its code.
func TestCentrifugoClientSSE(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Subs map[string]json.RawMessage `json:"subs"`
		}
		if r.URL.Path != "/connection/uni_sse" || json.Unmarshal([]byte(r.URL.Query().Get("cf_connect")), &req) != nil || req.Subs["c"] == nil {
			http.Error(w, "bad connect request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		bw := bufio.NewWriter(w)
		bw.WriteString("\r\n")
		for _, data := range []string{`{"connect":{"client":"x","subs":{"c":{}}}}`, strings.TrimPrefix(centrifugoPub(1), `{"push":`), `{}`,
			`{"channel":"c","pub":{"data":` + string(appendPayload(nil, 2, 5)) + `}}`, `{"disconnect":{"code":3001,"reason":"shutdown"}}`} {
			fmt.Fprintf(bw, "data: %s\n\n", data)
		}
		bw.Flush()
	}))
	t.Cleanup(srv.Close)
	target := &Target{Kind: KindCentrifugo, URL: srv.URL}
	if err := target.validate(); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	c := newClient(target, TransportSSE, "c", rec, newDialer(target, 0))
	if err := c.connect(context.Background(), false); err != nil {
		t.Fatalf("connect: %v", err)
	}
	c.start(context.Background())
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not end at the disconnect")
	}
	if c.count.Load() != 2 || c.last.Load() != 2 || c.gaps.Load() != 0 || c.disconnect.Load() != 3001 {
		t.Errorf("count %d, last %d, gaps %d, disconnect %d; want 2, 2, 0, 3001",
			c.count.Load(), c.last.Load(), c.gaps.Load(), c.disconnect.Load())
	}
	c.stop()
}

// TestCentrifugoClientResume: a client resumes from the position of the
// last publication it saw; the recovered publications in the subscribe
// result are counted in order, and a subscription that is not recovered
// fails the resume.
func TestCentrifugoClientResume(t *testing.T) {
	for _, recovered := range []bool{true, false} {
		t.Run(fmt.Sprint("recovered=", recovered), func(t *testing.T) {
			target, done := fakeCentrifugo(t, func(ws *websocket.Conn) error {
				if err := readHandshake(ws, "c", &centrifugoPosition{Epoch: "E", Offset: 2}); err != nil {
					return err
				}
				sub := fmt.Sprintf(`{"id":2,"subscribe":{"epoch":"E","publications":[{"data":%s,"offset":3},{"data":%s,"offset":4}],"recovered":%v,"offset":4}}`,
					appendPayload(nil, 3, 1), appendPayload(nil, 4, 1), recovered)
				if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"connect":{}}`+"\n"+sub)); err != nil {
					return err
				}
				_, _, _ = ws.ReadMessage() // until the client closes
				return nil
			})
			c := newClient(target, TransportWS, "c", newRecorder(), newDialer(target, 0))
			// Where a first connection left it: publications 1 and 2 seen.
			c.epoch, c.offset = "E", 2
			c.last.Store(2)
			err := c.connect(context.Background(), true)
			if recovered {
				if err != nil || c.count.Load() != 2 || c.last.Load() != 4 || c.gaps.Load() != 0 || c.offset != 4 {
					t.Errorf("resume: %v; count %d, last %d, gaps %d, offset %d; want 2, 4, 0, 4",
						err, c.count.Load(), c.last.Load(), c.gaps.Load(), c.offset)
				}
				c.stop()
			} else if err == nil || !strings.Contains(err.Error(), "not recovered") {
				t.Errorf("resume that was not recovered: %v", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("server: %v", err)
			}
		})
	}
}
