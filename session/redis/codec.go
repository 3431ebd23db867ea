package redis

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/waterspout/waterspout/session"
)

var errPacked = errors.New("malformed packed publication")

// decodePublication parses a packed publication (see scripts.go) of channel
// ch. It copies nothing but the data, which it does not parse.
func decodePublication(ch, s string) (*session.Publication, error) {
	var f [4]string
	rest := s
	for i := range f {
		j := strings.IndexByte(rest, ':')
		if j < 0 {
			return nil, errPacked
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	offset, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil || offset == 0 {
		return nil, errPacked
	}
	if !session.ValidEpoch(f[1]) {
		return nil, errPacked
	}
	ms, err := strconv.ParseUint(f[2], 10, 63)
	if err != nil {
		return nil, errPacked
	}
	klen, err := strconv.ParseUint(f[3], 10, 31)
	if err != nil || int(klen) >= len(rest) { // the data is never empty
		return nil, errPacked
	}
	return &session.Publication{
		Channel: ch,
		Offset:  offset,
		Epoch:   f[1],
		Data:    json.RawMessage(rest[klen:]),
		Key:     rest[:klen],
		Time:    int64(ms),
	}, nil
}
