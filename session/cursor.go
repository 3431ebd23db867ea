package session

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Cursor holds a client's position in every channel it follows. On the wire
// it is an opaque, URL-safe string (the SSE event id and the long-poll
// cursor); because it carries all the state, any node can serve any request.
type Cursor map[string]Position

// Advance moves the cursor past a frame the client has been sent: message
// and subscribed items carry the client's position in their channel after
// them. It reports whether the frame moved a position (and so whether a
// cursor handed out with it, such as an SSE event id, must be new).
func (c Cursor) Advance(it Item) bool {
	if it.Channel == "" {
		return false
	}
	c[it.Channel] = it.Position
	return true
}

// Limits of the cursor codec. A cursor is bounded so it fits in a URL and an
// SSE id line, and so a hostile one costs little to reject.
const (
	// MaxCursorLen keeps a cursor, with its header name, within one 8 KB
	// header line (Last-Event-ID), a common proxy default.
	MaxCursorLen      = 8000 // encoded characters
	MaxCursorChannels = 256
	cursorVersion     = 1
)

// CheckCursorFits refuses a channel set whose cursor could grow past
// MaxCursorLen, so a server never hands out a cursor it would then reject.
// It assumes the longest epoch a broker may produce and the largest offset.
func CheckCursorFits(channels []string) error {
	raw := 1 + binary.MaxVarintLen64
	for _, ch := range channels {
		raw += 2 + len(ch) + 1 + MaxBrokerEpochLen + 8 // lengths, name, epoch, offset < 2^53
	}
	if n := b64.EncodedLen(raw); n > MaxCursorLen || len(channels) > MaxCursorChannels {
		return &Error{400, fmt.Sprintf("these channels need a cursor of up to %d characters (limit %d): use fewer or shorter channel names", n, MaxCursorLen)}
	}
	return nil
}

// ErrBadCursor is returned for a cursor that cannot be decoded.
var ErrBadCursor = &Error{400, "invalid cursor"}

var b64 = base64.RawURLEncoding

// Encode returns the cursor's wire form, version 1:
// base64url(0x01, uvarint n, n × (uvarint len, name, uvarint len, epoch, uvarint offset)),
// channels in byte order. Equal cursors encode equally.
func (c Cursor) Encode() string {
	names := make([]string, 0, len(c))
	size := 1 + binary.MaxVarintLen64
	for name, p := range c {
		names = append(names, name)
		size += len(name) + len(p.Epoch) + 3*binary.MaxVarintLen64
	}
	sort.Strings(names)
	buf := make([]byte, 0, size)
	buf = append(buf, cursorVersion)
	buf = binary.AppendUvarint(buf, uint64(len(names)))
	for _, name := range names {
		p := c[name]
		buf = binary.AppendUvarint(buf, uint64(len(name)))
		buf = append(buf, name...)
		buf = binary.AppendUvarint(buf, uint64(len(p.Epoch)))
		buf = append(buf, p.Epoch...)
		buf = binary.AppendUvarint(buf, p.Offset)
	}
	return b64.EncodeToString(buf)
}

// DecodeCursor parses a cursor. The empty string is an empty cursor. Anything
// malformed, oversized, or naming an invalid channel or epoch is an error.
func DecodeCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	if len(s) > MaxCursorLen {
		return nil, ErrBadCursor
	}
	buf, err := b64.DecodeString(s)
	if err != nil || len(buf) < 2 || buf[0] != cursorVersion {
		return nil, ErrBadCursor
	}
	r := cursorReader{buf: buf[1:]}
	n := r.uvarint()
	if r.err != nil || n > MaxCursorChannels {
		return nil, ErrBadCursor
	}
	c := make(Cursor, n)
	for i := uint64(0); i < n; i++ {
		name := r.str(MaxChannelLen)
		epoch := r.str(MaxEpochLen)
		off := r.uvarint()
		if r.err != nil || ValidateChannel(name) != nil || !ValidEpoch(epoch) || off >= 1<<53 {
			return nil, ErrBadCursor
		}
		if _, dup := c[name]; dup {
			return nil, ErrBadCursor
		}
		c[name] = Position{Epoch: epoch, Offset: off}
	}
	if len(r.buf) != 0 {
		return nil, ErrBadCursor
	}
	return c, nil
}

// CursorNamesAny reports whether raw has the framing of a cursor (as
// DecodeCursor reads it, without checking names, epochs or offsets) and
// names one of channels. It is for a caller that only sorts requests, as
// the server's poll budget does; a handler still decodes the cursor in full.
// For a few channels it allocates one copy of raw at most, where
// DecodeCursor builds the map; many channels are looked up in a set.
func CursorNamesAny(raw string, channels []string) bool {
	// More channels than a cursor may name is no continuing request; the
	// bound also keeps the names × channels comparisons small.
	if raw == "" || len(raw) > MaxCursorLen || len(channels) > MaxCursorChannels {
		return false
	}
	var arr [512]byte
	buf, err := b64.AppendDecode(arr[:0], []byte(raw))
	if err != nil || len(buf) < 2 || buf[0] != cursorVersion {
		return false
	}
	// A few channels are compared in turn; more are looked up in a set.
	var set map[string]struct{}
	if len(channels) > 8 {
		set = make(map[string]struct{}, len(channels))
		for _, ch := range channels {
			set[ch] = struct{}{}
		}
	}
	r := cursorReader{buf: buf[1:]}
	n := r.uvarint()
	for i := uint64(0); i < n && i < MaxCursorChannels && r.err == nil; i++ {
		name := r.bytes(MaxChannelLen)
		r.bytes(MaxEpochLen)
		r.uvarint()
		if r.err != nil {
			return false
		}
		if set != nil {
			if _, ok := set[string(name)]; ok {
				return true
			}
			continue
		}
		for _, ch := range channels {
			if string(name) == ch {
				return true
			}
		}
	}
	return false
}

type cursorReader struct {
	buf []byte
	err error
}

var errShort = errors.New("short cursor")

func (r *cursorReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *cursorReader) str(max int) string { return string(r.bytes(max)) }

// bytes reads a length-prefixed field of at most max bytes; the bytes
// stay in r's buffer.
func (r *cursorReader) bytes(max int) []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(max) || n > uint64(len(r.buf)) {
		r.err = errShort
		return nil
	}
	b := r.buf[:n:n]
	r.buf = r.buf[n:]
	return b
}
