package conformance

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

// transportCase is how the scenarios drive one transport.
type transportCase struct {
	name      string
	dial      func(e *env, channels []string, since session.Cursor) (client, error)
	stall     func(e *env, ch string) (func(), error)
	streaming bool // one long-lived session per client (not long-polling)
	// malformed sends input that is not valid and returns the code the
	// client observed; oversized does the same for input over a limit.
	malformed, oversized         func(t *testing.T, e *env) int
	wantMalformed, wantOversized int
	// wantRefusedInternal is how the transport refuses a connection whose
	// authenticator failed: an HTTP status or a disconnect code.
	wantRefusedInternal int
	// wantRefusedToken is how it refuses one whose token the authenticator
	// rejects (session.DisconnectInvalidToken).
	wantRefusedToken int
}

var testLimits = session.Limits{MaxMessageBytes: 4096, MaxChannels: 8, MaxQueueBytes: 256 << 10}

func transportCases() []transportCase {
	return []transportCase{
		{name: "ws", dial: dialWS, stall: stallWS, streaming: true,
			malformed: commandMalformed(dialWS), oversized: commandOversized(dialWS),
			wantMalformed: 400, wantOversized: 3501, wantRefusedInternal: 3006, wantRefusedToken: 3502},
		{name: "sockjs", dial: dialSockJS, stall: stallSockJS, streaming: true,
			malformed: commandMalformed(dialSockJS), oversized: commandOversized(dialSockJS),
			wantMalformed: 400, wantOversized: 3501, wantRefusedInternal: 3006, wantRefusedToken: 3502},
		{name: "sse", dial: dialSSE, stall: stallSSE, streaming: true,
			malformed: badCursor(dialSSEQuery), oversized: tooManyChannels(dialSSE),
			wantMalformed: 400, wantOversized: 429, wantRefusedInternal: 500, wantRefusedToken: 401},
		{name: "poll", dial: dialPoll(false), stall: stallPoll,
			malformed: badCursor(func(e *env, q url.Values) (client, error) { return dialPollQuery(e, q, false) }), oversized: tooManyChannels(dialPoll(false)),
			wantMalformed: 400, wantOversized: 429, wantRefusedInternal: 500, wantRefusedToken: 401},
		{name: "jsonp", dial: dialPoll(true), stall: stallPoll,
			malformed: badCursor(func(e *env, q url.Values) (client, error) { return dialPollQuery(e, q, true) }), oversized: tooManyChannels(dialPoll(true)),
			wantMalformed: 400, wantOversized: 429, wantRefusedInternal: 500, wantRefusedToken: 401},
	}
}

// scenario is one behaviour every transport must show.
type scenario struct {
	name string
	run  func(t *testing.T, tc transportCase)
}

// runScenarios runs every scenario against every transport, a subtest
// each: transport/scenario.
func runScenarios(t *testing.T, scenarios []scenario) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.run(t, tc) })
			}
		})
	}
}

// TestConformance runs every scenario against every transport.
func TestConformance(t *testing.T) {
	runScenarios(t, []scenario{
		{"hello first", scenarioHello},
		{"subscribe and receive in order", scenarioOrder},
		{"resume exactly once", scenarioResume},
		{"recovered false after epoch change", scenarioEpochChange},
		{"heartbeats", scenarioHeartbeat},
		{"stalled client dropped, others unaffected", scenarioStalled},
		{"malformed input", scenarioMalformed},
		{"oversized input", scenarioOversized},
		{"panicking authenticator", scenarioAuthPanic},
		{"invalid token refused", scenarioAuthRefused},
	})
}

func mustDial(t *testing.T, tc transportCase, e *env, channels []string, since session.Cursor) client {
	t.Helper()
	c, err := tc.dial(e, channels, since)
	if err != nil {
		t.Fatalf("%s: connect: %v", tc.name, err)
	}
	t.Cleanup(c.Close)
	return c
}

// until reads frames until one has the type, failing on a timeout.
func until(t *testing.T, c client, typ string) frame {
	t.Helper()
	for {
		f, err := c.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for %q: %v", typ, err)
		}
		if f.Type == typ {
			return f
		}
	}
}

// collect reads message frames until it has want of them, in order and
// without duplicates, starting at number first. It returns the last position.
func collect(t *testing.T, c client, ch string, first, last int) session.Position {
	t.Helper()
	var pos session.Position
	for want := first; want <= last; {
		f, err := c.Next(10 * time.Second)
		if err != nil {
			t.Fatalf("waiting for message %d of %d..%d: %v", want, first, last, err)
		}
		if f.Type == "subscribed" && f.Recovered != nil && !*f.Recovered {
			t.Fatalf("unexpected recovered:false while waiting for message %d", want)
		}
		if f.Type != "message" || f.Channel != ch {
			continue
		}
		if got := wiretest.Number(t, f); got != want {
			t.Fatalf("message %d where %d was expected (gap, duplicate or reorder)", got, want)
		}
		pos = session.Position{Epoch: f.Epoch, Offset: f.Offset}
		want++
	}
	return pos
}

func scenarioHello(t *testing.T, tc transportCase) {
	e := newEnv(t, testLimits)
	c := mustDial(t, tc, e, []string{"a"}, nil)
	f, err := c.Next(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != "hello" || f.Transport != tc.name || f.Session == "" || f.Ping != int(testPing/time.Second) ||
		f.Limits == nil || *f.Limits != wire.Limits(testLimits) {
		t.Fatalf("first frame %+v: want hello naming transport %q with ping and limits", f, tc.name)
	}
}

func scenarioOrder(t *testing.T, tc transportCase) {
	e := newEnv(t, testLimits)
	c := mustDial(t, tc, e, []string{"a"}, nil)
	until(t, c, "subscribed")
	go e.publish("a", 1, 500)
	collect(t, c, "a", 1, 500)
}

func scenarioResume(t *testing.T, tc transportCase) {
	e := newEnv(t, testLimits)
	c := mustDial(t, tc, e, []string{"a"}, nil)
	until(t, c, "subscribed")
	e.publish("a", 1, 50)
	pos := collect(t, c, "a", 1, 50)

	// Disconnect while publishing continues, then resume from the position.
	c.Close()
	e.publish("a", 51, 100)
	c2 := mustDial(t, tc, e, []string{"a"}, session.Cursor{"a": pos})
	go e.publish("a", 101, 150)
	collect(t, c2, "a", 51, 150)
	// Nothing was repeated: the next message is the next number.
	e.publish("a", 151, 151)
	collect(t, c2, "a", 151, 151)
}

func scenarioEpochChange(t *testing.T, tc transportCase) {
	e := newEnv(t, testLimits)
	e.publish("a", 1, 5)
	// A position from a history that no longer exists (a restarted node): the
	// client is told recovered:false, then gets what the current epoch holds
	// from its start, then live messages.
	c := mustDial(t, tc, e, []string{"a"}, session.Cursor{"a": {Epoch: "lostEpoch", Offset: 3}})
	f := until(t, c, "subscribed")
	if f.Recovered == nil || *f.Recovered || f.Offset != 0 || f.Epoch == "lostEpoch" {
		t.Fatalf("subscribed %+v: want recovered:false at offset 0 of the current epoch", f)
	}
	collect(t, c, "a", 1, 5)
	e.publish("a", 6, 6)
	collect(t, c, "a", 6, 6)
}

func scenarioHeartbeat(t *testing.T, tc transportCase) {
	e := newEnv(t, testLimits)
	c := mustDial(t, tc, e, []string{"a"}, nil)
	until(t, c, "subscribed")
	for i := 0; i < 2; i++ { // two in a row: heartbeats repeat
		f, err := c.Next(3 * testPing)
		if err != nil || f.Type != "ping" {
			t.Fatalf("idle connection: got %+v, %v; want a ping within %v", f, err, 3*testPing)
		}
	}
}

func scenarioStalled(t *testing.T, tc transportCase) {
	e := newEnv(t, testLimits)
	healthy := mustDial(t, tc, e, []string{"a"}, nil)
	until(t, healthy, "subscribed")
	stop, err := tc.stall(e, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if tc.streaming {
		if err := e.waitSessions(2, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// 2,000 × 4 KB, 8 MB in all: more than the kernel buffers and the queue
	// bound of a client that does not read. The publisher goes in steps the
	// healthy client keeps up with (an unpaced in-process publisher outruns
	// any reader), and no publish may block on the stalled client.
	pad := strings.Repeat("x", 4000)
	for from := 1; from <= 2000; from += 50 {
		e.publishData("a", from, from+49, pad)
		collect(t, healthy, "a", from, from+49)
	}
	if tc.streaming {
		if err := e.waitSessions(1, 10*time.Second); err != nil {
			t.Fatalf("the stalled client was not dropped: %v", err)
		}
	}
}

// commander dials a client of a transport with a command channel, on no
// channel, and returns it with its send; the test's end closes it.
func commander(t *testing.T, e *env, dial func(*env, []string, session.Cursor) (client, error)) (client, func([]byte) error) {
	t.Helper()
	c, err := dial(e, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.(interface{ send([]byte) error }).send
}

// commandMalformed sends a frame that is not JSON, expects an error frame, and
// checks the connection still works.
func commandMalformed(dial func(*env, []string, session.Cursor) (client, error)) func(*testing.T, *env) int {
	return func(t *testing.T, e *env) int {
		c, send := commander(t, e, dial)
		send([]byte(`{"type":`))
		f := until(t, c, "error")
		if f.Reason == "" {
			t.Fatalf("error frame without a reason: %+v", f)
		}
		send(subscribeCommands([]string{"after"}, nil)[0])
		if g := until(t, c, "subscribed"); g.Channel != "after" {
			t.Fatalf("connection unusable after bad input: %+v", g)
		}
		return f.Code
	}
}

// commandOversized sends a frame over maxMessageBytes and returns the
// disconnect code that ends the connection.
func commandOversized(dial func(*env, []string, session.Cursor) (client, error)) func(*testing.T, *env) int {
	return func(t *testing.T, e *env) int {
		c, send := commander(t, e, dial)
		until(t, c, "hello")
		big := `{"type":"ping","id":1,"pad":"` + strings.Repeat("x", testLimits.MaxMessageBytes) + `"}`
		send([]byte(big))
		for {
			f, err := c.Next(5 * time.Second)
			var ce closedError
			switch {
			case errors.As(err, &ce):
				return ce.Code
			case err != nil:
				t.Fatalf("after an oversized frame: %v", err)
			case f.Type == "disconnect":
				return f.Code
			}
		}
	}
}

func statusOf(t *testing.T, err error) int {
	t.Helper()
	var he httpError
	if !errors.As(err, &he) {
		t.Fatalf("want an HTTP error, got %v", err)
	}
	return he.Status
}

// badCursor connects with a cursor that is not one.
func badCursor(dial func(e *env, q url.Values) (client, error)) func(*testing.T, *env) int {
	return func(t *testing.T, e *env) int {
		c, err := dial(e, url.Values{"channel": {"a"}, "cursor": {"!!not-a-cursor"}})
		if err == nil {
			c.Close()
			t.Fatal("a malformed cursor was accepted")
		}
		return statusOf(t, err)
	}
}

func tooManyChannels(dial func(*env, []string, session.Cursor) (client, error)) func(*testing.T, *env) int {
	return func(t *testing.T, e *env) int {
		var chs []string
		for i := 0; i <= testLimits.MaxChannels; i++ {
			chs = append(chs, "c"+strings.Repeat("x", i))
		}
		c, err := dial(e, chs, nil)
		if err == nil {
			c.Close()
			t.Fatalf("%d channels accepted with a limit of %d", len(chs), testLimits.MaxChannels)
		}
		return statusOf(t, err)
	}
}

func scenarioMalformed(t *testing.T, tc transportCase) {
	e := newEnv(t, testLimits)
	if got := tc.malformed(t, e); got != tc.wantMalformed {
		t.Fatalf("malformed input answered with %d, want %d", got, tc.wantMalformed)
	}
	healthyAfter(t, tc, e)
}

func scenarioOversized(t *testing.T, tc transportCase) {
	e := newEnv(t, testLimits)
	if got := tc.oversized(t, e); got != tc.wantOversized {
		t.Fatalf("oversized input answered with %d, want %d", got, tc.wantOversized)
	}
	healthyAfter(t, tc, e)
}

// healthyAfter checks bad input changed nothing for a new client.
func healthyAfter(t *testing.T, tc transportCase, e *env) {
	t.Helper()
	c := mustDial(t, tc, e, []string{"ok"}, nil)
	until(t, c, "subscribed")
	e.publish("ok", 1, 3)
	collect(t, c, "ok", 1, 3)
}

// scenarioAuthPanic connects with a token to a server whose authenticator
// panics: the client is refused as for any server failure, and the session
// the transport opened for it is gone, so that a shutdown finds nothing
// left to wait for.
func scenarioAuthPanic(t *testing.T, tc transportCase) {
	refusedBy(t, tc, func(*http.Request, *session.Session) error { panic("authenticator bug") }, tc.wantRefusedInternal)
}

// scenarioAuthRefused connects with a token the authenticator rejects: the
// client is told so (401 or disconnect 3502) and no session is left open.
func scenarioAuthRefused(t *testing.T, tc transportCase) {
	refusedBy(t, tc, func(*http.Request, *session.Session) error { return session.DisconnectInvalidToken }, tc.wantRefusedToken)
}

// refusedBy connects with a token to a server whose authenticator is auth,
// and checks that the client is refused with want and that the session the
// transport opened for it is gone, so that a shutdown finds nothing left to
// wait for.
func refusedBy(t *testing.T, tc transportCase, auth func(*http.Request, *session.Session) error, want int) {
	e := newEnvFor(t, session.Config{Limits: testLimits}, auth)
	e.token = "t"
	c, err := tc.dial(e, []string{"a"}, nil)
	got := 0
	if err != nil {
		got = statusOf(t, err)
	} else {
		defer c.Close()
		for got == 0 {
			f, err := c.Next(5 * time.Second)
			var ce closedError
			switch {
			case errors.As(err, &ce):
				got = ce.Code
			case err != nil:
				t.Fatalf("waiting for the refusal: %v", err)
			case f.Type == "disconnect":
				got = f.Code
			case f.Type == "message" || f.Type == "subscribed":
				t.Fatalf("a client whose authentication failed was served: %+v", f)
			}
		}
	}
	if got != want {
		t.Fatalf("refused with %d, want %d", got, want)
	}
	if err := e.waitSessions(0, 5*time.Second); err != nil {
		t.Fatalf("the session outlived its failed authentication: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.node.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
