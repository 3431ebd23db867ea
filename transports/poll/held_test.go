package poll

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wiretest"
)

// A held poll runs off net/http on its hijacked connection; with the
// server's ReuseListener the connection then serves the client's next poll,
// as HTTP keep-alive promises. Every message arrives once, in order, and
// every poll after the first reuses the first poll's connection.
func TestHeldPollsKeepTheConnection(t *testing.T) {
	e := newEnv(t, envConfig{Reuse: true, Options: Options{Timeout: time.Hour, Detach: time.Nanosecond}})
	cursor := *e.poll(t, query("channel", "c")).Cursor
	var conns []string
	reused := 0
	next := 1
	for round := range 20 {
		var local string
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
			local = ci.Conn.LocalAddr().String()
			if ci.Reused {
				reused++
			}
		}}
		ctx := httptrace.WithClientTrace(context.Background(), trace)
		answered := make(chan reply, 1)
		go func() {
			r, err := e.do(ctx, http.MethodGet, query("channel", "c", "cursor", cursor), nil)
			if err != nil {
				r = reply{Status: -1, Body: err.Error()}
			}
			answered <- r
		}()
		e.WaitSessions(t, 1)
		e.publish(t, "c", next, next+round%3)
		r := <-answered
		a := decodeAnswer(t, r)
		for _, m := range a.Messages {
			if n, _ := strconv.Atoi(string(m.Data)); n != next {
				t.Fatalf("round %d: got message %d, want %d", round, n, next)
			}
			next++
		}
		cursor = *a.Cursor
		conns = append(conns, local)
		e.WaitSessions(t, 0)
	}
	if reused != 20 {
		t.Fatalf("%d of 20 held polls reused a connection; local addresses %v", reused, conns)
	}
	for _, c := range conns[1:] {
		if c != conns[0] {
			t.Fatalf("polls moved between connections: %v", conns)
		}
	}
}

// A client that pipelines its next request behind a held poll gets both
// answers, in order: the bytes the hold read go back with the connection.
func TestHeldPollPipelined(t *testing.T) {
	e := newEnv(t, envConfig{Reuse: true, Options: Options{Timeout: time.Hour, Detach: time.Nanosecond}})
	cursor := *e.poll(t, query("channel", "c")).Cursor
	c, err := wiretest.DialRaw(e.Srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /connect/poll?channel=c&cursor=%s HTTP/1.1\r\nHost: x\r\n\r\n", cursor)
	e.WaitSessions(t, 1)
	time.Sleep(20 * time.Millisecond)                                        // the hold has started reading
	fmt.Fprint(c, "GET /connect/poll?channel=c HTTP/1.1\r\nHost: x\r\n\r\n") // no cursor: answered at once
	time.Sleep(20 * time.Millisecond)
	e.publish(t, "c", 1, 1)
	for i, want := range []string{`"data":1`, `"type":"hello"`} {
		resp, body, err := c.Answer()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		var a pollAnswer
		if resp.StatusCode != http.StatusOK || jsonUnmarshal(body, &a) != nil || !strings.Contains(body, want) {
			t.Fatalf("answer %d: %d %s, want one with %s", i, resp.StatusCode, body, want)
		}
	}
}

// A held poll whose request body was left unread (a POST that is not a
// form) must not hand those bytes to the server as a next request: one
// request sent, one answer, held or not.
func TestHeldPollUnreadBodyIsNotARequest(t *testing.T) {
	for _, held := range []bool{false, true} {
		t.Run(fmt.Sprint("held=", held), func(t *testing.T) {
			e := newEnv(t, envConfig{Reuse: true, Options: Options{Timeout: 300 * time.Millisecond, Detach: time.Nanosecond}})
			q := "channel=c"
			if held {
				q += "&cursor=" + *e.poll(t, query("channel", "c")).Cursor
			}
			c, err := wiretest.DialRaw(e.Srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			inner := "GET /connect/poll?channel=smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
			fmt.Fprintf(c, "POST /connect/poll?%s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", q, len(inner), inner)
			answers := 0
			for {
				resp, body, _ := c.Answer()
				if resp == nil {
					break
				}
				if strings.Contains(body, "smuggled") {
					t.Errorf("the body was served as a request: %s", body)
				}
				answers++
			}
			if answers != 1 {
				t.Errorf("one request sent, %d answers", answers)
			}
		})
	}
}
