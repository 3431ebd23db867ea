package wiretest

import (
	"bytes"

	"github.com/waterspout/waterspout/internal/wire"
)

// SockJSFrames decodes one SockJS frame received over SockJS's WebSocket
// transport into the WaterSpout frames its messages carry, for StreamWS:
// open and heartbeat frames carry none, and the close frame c[code,reason]
// ends the stream with a ClosedError of its code.
func SockJSFrames(data []byte) ([]wire.Frame, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	sf, err := wire.DecodeSockJS(data)
	if err != nil {
		return nil, err
	}
	if sf.Kind == 'c' {
		return nil, ClosedError{Code: sf.Code}
	}
	var out []wire.Frame
	for _, m := range sf.Messages {
		out = append(out, m...)
	}
	return out, nil
}
