package ws

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/internal/netconn"
	"github.com/waterspout/waterspout/internal/wire"
	"github.com/waterspout/waterspout/internal/wiretest"
	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// clientFrame is one masked client frame.
func clientFrame(op byte, fin bool, payload string) []byte {
	return wire.ClientFrame(op, fin, []byte(payload))
}

var barePong = clientFrame(websocket.PongMessage, true, "")

func subscribeCmd(id int, ch string) string {
	return fmt.Sprintf(`{"type":"subscribe","id":%d,"channel":%q}`, id, ch)
}

// readServerText reads one text frame (skipping control frames).
func readServerText(t *testing.T, c *wiretest.RawConn) string {
	t.Helper()
	for {
		op, p, err := c.ReadFrame()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		if op == websocket.TextMessage {
			return string(p)
		}
	}
}

// The reader waits for the client outside gorilla and takes the bare pongs
// that answer our pings itself. Whatever else arrives, however it is cut
// into TCP segments, must reach gorilla whole and in order: pongs alone, a
// pong cut in two, a pong glued to a command, two commands in one write
// (the second sits in the read buffer while the first is handled), and a
// fragmented command with a pong between its fragments.
func TestReaderWaitsOutsideGorillaWithoutLosingBytes(t *testing.T) {
	e := newEnv(t, envConfig{Node: session.Config{Limits: session.Limits{MaxMessageBytes: 1000}}})
	c := rawClient(t, e)
	write := func(parts ...[]byte) {
		t.Helper()
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	pause := func() { time.Sleep(20 * time.Millisecond) } // let each write arrive on its own
	var frames []string                                   // a message may batch several frames, one per line
	expect := func(ids ...int) {
		t.Helper()
		for _, id := range ids {
			if len(frames) == 0 {
				frames = strings.Split(readServerText(t, c), "\n")
			}
			got := frames[0]
			frames = frames[1:]
			if want := fmt.Sprintf(`"type":"subscribed","id":%d,`, id); !strings.Contains(got, want) {
				t.Fatalf("got %s, want a subscribed frame with id %d", got, id)
			}
		}
	}

	write(barePong)
	pause()
	write(barePong)
	pause()
	write(clientFrame(websocket.TextMessage, true, subscribeCmd(1, "a")))
	expect(1)

	write(barePong[:2])
	pause()
	write(barePong[2:])
	pause()
	write(barePong, clientFrame(websocket.TextMessage, true, subscribeCmd(2, "b")))
	expect(2)

	write(clientFrame(websocket.TextMessage, true, subscribeCmd(3, "c")),
		clientFrame(websocket.TextMessage, true, subscribeCmd(4, "d")))
	expect(3, 4)

	cmd := subscribeCmd(5, "e")
	write(clientFrame(websocket.TextMessage, false, cmd[:10]))
	pause()
	write(barePong)
	pause()
	write(clientFrame(0 /* continuation */, true, cmd[10:]))
	expect(5)

	// A message over the limit is left half read: the bytes after it are
	// still frames, not pongs, and the client gets 3501.
	big := strings.Repeat("x", e.Node.Limits().MaxMessageBytes+10)
	write(clientFrame(websocket.TextMessage, true, big))
	got := readServerText(t, c)
	if want := fmt.Sprintf(`"code":%d`, session.DisconnectMessageTooLarge.Code); !strings.Contains(got, want) {
		t.Fatalf("after an oversized message got %s, want a disconnect %d", got, session.DisconnectMessageTooLarge.Code)
	}
}

// A client that says nothing at all, not even a pong, is still dropped as
// stale while its reader waits outside gorilla.
func TestSilentClientIsStale(t *testing.T) {
	e := newEnv(t, envConfig{Node: session.Config{Ping: time.Second}})
	c := rawClient(t, e)
	for {
		f := readServerText(t, c)
		if strings.Contains(f, `"type":"disconnect"`) {
			if want := fmt.Sprintf(`"code":%d`, session.DisconnectStale.Code); !strings.Contains(f, want) {
				t.Fatalf("got %s, want disconnect %d", f, session.DisconnectStale.Code)
			}
			return
		}
	}
}

var _ net.Conn = (*rawConn)(nil)

// FuzzClientByteStream sends the server a client byte stream built from the
// fuzzer's input, cut into TCP writes at the fuzzer's choice: bare pongs,
// pongs cut in two, commands whole, fragmented around a pong, or glued to
// the next frame. However the bytes arrive, every subscribe is answered
// once, in order: the reader's wait outside gorilla loses, reorders and
// misreads nothing.
func FuzzClientByteStream(f *testing.F) {
	f.Add([]byte{0, 2, 1, 2, 3, 4, 2})
	f.Add([]byte{4, 4, 4, 0x80, 0x81, 0x82, 0x83, 0x84})
	f.Add([]byte{3, 0x83, 1, 0x81, 2})
	e := newEnv(f, envConfig{Node: session.Config{Limits: session.Limits{MaxChannels: 128}}})
	addr := strings.TrimPrefix(e.Srv.URL, "http://")
	f.Fuzz(func(t *testing.T, program []byte) {
		if len(program) > 48 {
			program = program[:48]
		}
		c, err := rawHandshake(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var segments [][]byte
		var cur []byte
		cut := func() {
			if len(cur) > 0 {
				segments = append(segments, cur)
				cur = nil
			}
		}
		ids := 0
		cmd := func() string { ids++; return subscribeCmd(ids, fmt.Sprintf("ch%d", ids)) }
		for _, op := range program {
			switch op % 5 {
			case 0:
				cur = append(cur, barePong...)
			case 1:
				cur = append(cur, barePong[:2]...)
				cut()
				cur = append(cur, barePong[2:]...)
			case 2:
				cur = append(cur, clientFrame(websocket.TextMessage, true, cmd())...)
			case 3:
				s := cmd()
				at := 1 + int(op/5)%(len(s)-1)
				cur = append(cur, clientFrame(websocket.TextMessage, false, s[:at])...)
				cur = append(cur, barePong...)
				cur = append(cur, clientFrame(0, true, s[at:])...)
			case 4:
				cur = append(cur, clientFrame(websocket.TextMessage, true, cmd())...)
				cur = append(cur, clientFrame(websocket.TextMessage, true, cmd())...)
			}
			if op&0x80 != 0 {
				cut()
			}
		}
		cut()
		for _, s := range segments {
			if _, err := c.Write(s); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		for want := 1; want <= ids; {
			for _, f := range strings.Split(readServerText(t, c), "\n") {
				if !strings.Contains(f, fmt.Sprintf(`"type":"subscribed","id":%d,`, want)) {
					t.Fatalf("got %s, want the subscribed frame for id %d", f, want)
				}
				want++
			}
		}
	})
}

// Gorilla's one write after the handshake, its close frame on a protocol
// error, goes out whole, and from then on the server writes nothing more:
// a pong, a batch or a closing frame of ours returns ErrCloseSent, as
// gorilla's own writers did when they owned the writes.
func TestNothingAfterGorillasCloseFrame(t *testing.T) {
	e := newEnv(t, envConfig{})
	addr := strings.TrimPrefix(e.Srv.URL, "http://")
	c, err := rawHandshake(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// An unmasked client frame is a protocol error (RFC 6455 §5.1).
	if _, err := c.Write([]byte{0x81, 0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(c.Reader())
	if err != nil && !isReset(err) {
		t.Fatal(err)
	}
	if len(rest) < 4 || rest[0] != 0x88 || binary.BigEndian.Uint16(rest[2:4]) != websocket.CloseProtocolError || len(rest) != 2+int(rest[1]) {
		t.Fatalf("after a protocol error the server sent % x, want one close frame 1002 and nothing after", rest)
	}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _, _ = io.Copy(io.Discard, b) }()
	raw := &rawConn{PrefixConn: netconn.PrefixConn{Conn: netconn.NewConn(a)}}
	cn := &conn{h: &Handler{cfg: transports.Config{WriteTimeout: wiretest.WaitLimit}}, raw: raw, out: raw.Conn.(*netconn.Conn)}
	if err := cn.write([]byte{0x81, 0}); err != nil {
		t.Fatalf("before the close: %v", err)
	}
	if _, err := raw.Write([]byte{0x88, 0x02, 0x03, 0xea}); err != nil { // as gorilla writes it
		t.Fatal(err)
	}
	if err := cn.write([]byte{0x81, 0}); !errors.Is(err, websocket.ErrCloseSent) {
		t.Fatalf("after gorilla's close: %v, want ErrCloseSent", err)
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// rawClient is a WebSocket connection to e, opened by hand past its hello
// frame, that the test closes; every read and write must end within
// wiretest.WaitLimit.
func rawClient(t *testing.T, e *testEnv) *wiretest.RawConn {
	t.Helper()
	c, err := rawHandshake(strings.TrimPrefix(e.Srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
