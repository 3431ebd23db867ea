package sockjs

import (
	"bytes"
	"net/http"
	"time"
)

// sockjs-go (v3.0.3) detaches an answered poll in a goroutine of its own. A
// client that polls again at once, as it should, can arrive before that
// goroutine runs and be answered c[2010,"Another connection still open"]:
// sockjs-client then gives up on a healthy session. A polling request
// (xhr, jsonp) whose answer is exactly that is therefore served again after a
// moment. A genuine second poll of a session still gets 2010 once the
// retries run out.
const (
	pollRetries   = 50
	pollRetryWait = 2 * time.Millisecond
)

var stillOpen = []byte(`2010,\"Another connection still open\"`)
var stillOpenPlain = []byte(`2010,"Another connection still open"`)

// retryPoll serves a polling request through next, again while it answers 2010.
func retryPoll(w *responseWriter, r *http.Request, next http.Handler) {
	for attempt := 0; ; attempt++ {
		pw := &pollWriter{real: w, header: w.Header().Clone(), retryable: attempt < pollRetries}
		next.ServeHTTP(pw, r)
		if !pw.stillOpen || r.Context().Err() != nil {
			if !pw.decided { // nothing was written: pass the status and headers on
				pw.commit()
			}
			return
		}
		time.Sleep(pollRetryWait)
	}
}

// pollWriter holds back the status and headers of a poll answer until its
// first write. If that write is the 2010 frame (one write, as sockjs-go's
// frame writers make it) it is dropped so the request can be served again;
// anything else passes straight through, so write errors still reach
// sockjs-go.
type pollWriter struct {
	real      *responseWriter
	header    http.Header
	status    int
	retryable bool
	decided   bool // the first write has happened
	stillOpen bool // and it was a 2010 that will be retried
}

func (p *pollWriter) Header() http.Header {
	if p.decided && !p.stillOpen {
		return p.real.Header()
	}
	return p.header
}

func (p *pollWriter) WriteHeader(status int) {
	if !p.decided {
		if p.status == 0 {
			p.status = status
		}
		return
	}
	if !p.stillOpen {
		p.real.WriteHeader(status)
	}
}

func (p *pollWriter) Write(b []byte) (int, error) {
	if !p.decided {
		p.decided = true
		if p.retryable && len(b) < 256 && (bytes.Contains(b, stillOpen) || bytes.Contains(b, stillOpenPlain)) {
			p.stillOpen = true
			return len(b), nil
		}
		p.commit()
	}
	if p.stillOpen {
		return len(b), nil
	}
	return p.real.Write(b)
}

func (p *pollWriter) Flush() {
	if p.decided && !p.stillOpen {
		p.real.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer's deadlines.
func (p *pollWriter) Unwrap() http.ResponseWriter { return p.real }

// commit sends the held status and headers to the real writer.
func (p *pollWriter) commit() {
	h := p.real.Header()
	for k, v := range p.header {
		h[k] = v
	}
	if p.status != 0 {
		p.real.WriteHeader(p.status)
	}
}
