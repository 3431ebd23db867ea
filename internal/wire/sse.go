package wire

import (
	"bufio"
	"io"
	"strings"
)

// SSEEvent is one dispatched server-sent event.
type SSEEvent struct {
	ID    string
	HasID bool // an id field was present (an empty id resets a browser's)
	Data  string
	Retry string
}

// SSEReader parses an event stream the way a browser's EventSource does:
// fields accumulate until a blank line dispatches them, comments are
// skipped, an id with a NUL is ignored, and an unfinished event at the end
// of the stream is dropped (so a stream cut inside an event never resumes
// past it).
type SSEReader struct {
	r *bufio.Reader
}

// NewSSEReader reads events from r.
func NewSSEReader(r io.Reader) *SSEReader { return &SSEReader{r: bufio.NewReader(r)} }

// Next returns the next event that has any field, or the read error.
func (s *SSEReader) Next() (SSEEvent, error) {
	var ev SSEEvent
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return SSEEvent{}, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if data != nil || ev.HasID || ev.Retry != "" {
				ev.Data = strings.Join(data, "\n")
				return ev, nil
			}
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "": // a comment
		case "data":
			data = append(data, value)
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID, ev.HasID = value, true
			}
		case "retry":
			ev.Retry = value
		}
	}
}
