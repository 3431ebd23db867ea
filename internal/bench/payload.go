package bench

import (
	"bytes"
	"strconv"
)

// The payload every scenario publishes: {"s":SEQ,"t":NANOS,"x":"…"}. SEQ
// counts a channel's publications from 1 (0 marks warm-up messages, which
// carry no measurement); NANOS is the intended send time in nanoseconds
// since the run's clock started. The text pads it to a typical small
// notification (about 80 bytes) so that byte costs are realistic.
const payloadText = "a typical small notification payload"

// appendPayload appends the payload for seq and intended time t.
func appendPayload(b []byte, seq, t int64) []byte {
	b = append(b, `{"s":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"x":"`+payloadText+`"}`...)
	return b
}

var (
	payloadStart = []byte(`{"s":`)
	payloadT     = []byte(`,"t":`)
	dataKey      = []byte(`"data":`)
	offsetKey    = []byte(`"offset":`)
	epochKey     = []byte(`"epoch":"`)
)

// scanPayload finds the payload in a frame, whatever wraps it (a WaterSpout
// message frame, an Nchan message that is the payload itself), and returns
// its sequence number and intended time. It scans instead of decoding JSON
// because the load generator shares the CPU with the server it measures.
func scanPayload(frame []byte) (seq, t int64, ok bool) {
	i := bytes.Index(frame, payloadStart)
	if i < 0 {
		return 0, 0, false
	}
	rest := frame[i+len(payloadStart):]
	seq, rest, ok = scanInt(rest)
	if !ok || !bytes.HasPrefix(rest, payloadT) {
		return 0, 0, false
	}
	t, _, ok = scanInt(rest[len(payloadT):])
	return seq, t, ok
}

// scanPosition returns the epoch and offset of a WaterSpout `message` or
// `subscribed` frame, looking only before its data so that a payload cannot
// fake them.
func scanPosition(frame []byte) (epoch string, offset int64, ok bool) {
	head := frame
	if i := bytes.Index(frame, dataKey); i >= 0 {
		head = frame[:i]
	}
	i := bytes.Index(head, offsetKey)
	if i < 0 {
		return "", 0, false
	}
	offset, _, ok = scanInt(head[i+len(offsetKey):])
	if !ok {
		return "", 0, false
	}
	j := bytes.Index(head, epochKey)
	if j < 0 {
		return "", 0, false
	}
	e := head[j+len(epochKey):]
	k := bytes.IndexByte(e, '"')
	if k <= 0 {
		return "", 0, false
	}
	return string(e[:k]), offset, true
}

// scanInt parses a non-negative decimal integer at the start of b (at most
// 18 digits, so it cannot overflow) and returns the rest.
func scanInt(b []byte) (int64, []byte, bool) {
	var n int64
	i := 0
	for ; i < len(b) && i < 18 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	if i == 0 || (i < len(b) && b[i] >= '0' && b[i] <= '9') {
		return 0, b, false
	}
	return n, b[i:], true
}

// frameType returns the "type" of a WaterSpout frame that starts with it,
// as every frame the server writes does, or "".
func frameType(frame []byte) string {
	const prefix = `{"type":"`
	if !bytes.HasPrefix(frame, []byte(prefix)) {
		return ""
	}
	rest := frame[len(prefix):]
	if k := bytes.IndexByte(rest, '"'); k > 0 {
		return string(rest[:k])
	}
	return ""
}
