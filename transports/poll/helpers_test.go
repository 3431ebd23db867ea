package poll

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
)

// envConfig configures a test server. Zero fields take test defaults;
// Reuse serves through a netconn.ReuseListener, so that held polls hand
// their connections back (as the real server does).
type envConfig = wiretest.TransportEnv[Options]

// testEnv is a node on a memory broker with /connect/poll on a loopback
// test server. Its cleanup's node shutdown also checks that every held poll
// closes its session.
type testEnv struct {
	*wiretest.Env
	client *http.Client
}

func newEnv(t testing.TB, ec envConfig) *testEnv {
	t.Helper()
	we := ec.Start(t, wiretest.At("/connect/poll", New))
	client := we.Srv.Client()
	client.Timeout = wiretest.WaitLimit
	return &testEnv{Env: we, client: client}
}

// publish publishes the integers from..to to ch. It may run off the test
// goroutine, so it reports an error without stopping the test.
func (e *testEnv) publish(t testing.TB, ch string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := e.Node.Publish(context.Background(), ch, json.RawMessage(strconv.Itoa(i)), ""); err != nil {
			t.Error(err)
			return
		}
	}
}

// frame is a decoded server frame.
type frame = wire.Frame

// pollAnswer is a decoded poll answer or error.
type pollAnswer = wire.PollAnswer

// reply is a raw HTTP answer.
type reply = wiretest.Reply

// do sends a poll. A POST sends q as a form body.
func (e *testEnv) do(ctx context.Context, method string, q url.Values, header map[string]string) (reply, error) {
	h := http.Header{}
	for k, v := range header {
		h.Set(k, v)
	}
	return wiretest.Do(ctx, e.client, method, e.Srv.URL+"/connect/poll", q, h)
}

// send sends a poll, failing the test if no answer comes.
func (e *testEnv) send(t testing.TB, method string, q url.Values, header map[string]string) reply {
	t.Helper()
	r, err := e.do(context.Background(), method, q, header)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// poll sends a GET poll and decodes its 200 JSON answer.
func (e *testEnv) poll(t testing.TB, q url.Values) pollAnswer {
	t.Helper()
	return decodeAnswer(t, e.send(t, http.MethodGet, q, nil))
}

// pollAsync sends a GET poll from another goroutine; the test decodes the
// reply (t.Fatal must not run off the test goroutine).
func (e *testEnv) pollAsync(q url.Values) <-chan reply {
	out := make(chan reply, 1)
	go func() {
		r, err := e.do(context.Background(), http.MethodGet, q, nil)
		if err != nil {
			r = reply{Status: -1, Body: err.Error()}
		}
		out <- r
	}()
	return out
}

func decodeAnswer(t testing.TB, r reply) pollAnswer {
	t.Helper()
	return decodeJSONP(t, r, "")
}

// decodeJSONP checks the /**/cb(...); wrapping (none without cb) and
// decodes the argument.
func decodeJSONP(t testing.TB, r reply, cb string) pollAnswer {
	t.Helper()
	a, err := wire.DecodePoll([]byte(r.Body), cb)
	if r.Status != http.StatusOK || err != nil {
		t.Fatalf("poll: %d %s (%v)", r.Status, r.Body, err)
	}
	return a
}

// cursorOf decodes an answer's cursor.
func cursorOf(t testing.TB, a pollAnswer) session.Cursor {
	t.Helper()
	c, err := session.DecodeCursor(*a.Cursor)
	if err != nil {
		t.Fatalf("cursor %q: %v", *a.Cursor, err)
	}
	return c
}

// numbers returns the integer payloads of the messages in ch.
func numbers(t testing.TB, fs []frame, ch string) []int {
	t.Helper()
	return wiretest.Numbers(t, fs, ch)
}

func query(kv ...string) url.Values { return wiretest.Query(kv...) }
