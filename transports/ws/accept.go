package ws

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/session"
	"github.com/waterspout/waterspout/transports"
)

// Transport is the name of this transport in hello frames and metrics.
const Transport = "ws"

// Options tunes the WebSocket transport beyond transports.Config.
type Options struct {
	// CloseGrace is how long the server waits after its close frame for the
	// client's, before it drops the TCP connection. Closing at once could
	// reset the connection and lose the disconnect frame the client has not
	// read yet. Default 1 s.
	CloseGrace time.Duration
}

// DefaultCloseGrace is used when Options.CloseGrace is zero.
const DefaultCloseGrace = time.Second

// readBufferSize is the connection's read buffer. Reads are small
// commands; the read buffer is the only buffer an idle connection keeps.
// It is handed to gorilla at the hijack (see hijacker), and gorilla takes a
// hijacked buffer only above 256 bytes: 320 hold a subscribe without a
// token (a longer command is read in several pieces) and any control frame
// (gorilla needs 125). Gorilla writes no message (write.go frames them
// all), so the upgrader's pool of write buffers stays empty.
const readBufferSize = 320

// Handler serves WebSocket connections at GET /connect/ws.
type Handler struct {
	cfg        transports.Config
	node       *session.Node
	log        *slog.Logger
	upgrader   *websocket.Upgrader
	closeGrace time.Duration
	pongWait   time.Duration
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler for cfg.
func New(cfg transports.Config, opts Options) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ws: %w", err)
	}
	var err error
	if opts.CloseGrace, err = transports.DurationOption("close grace", opts.CloseGrace, DefaultCloseGrace); err != nil {
		return nil, fmt.Errorf("ws: %w", err)
	}
	h := &Handler{
		cfg:        cfg,
		node:       cfg.Node,
		log:        cfg.Logger.With("transport", Transport),
		upgrader:   cfg.Upgrader(0), // the hijacker's read buffer
		closeGrace: opts.CloseGrace,
		pongWait:   pongWait(cfg.Node.Ping()),
	}
	return h, nil
}

// pongWait is how long a connection may stay silent (no message, no pong)
// before it is closed as stale. Protocol pings go out every ping interval;
// two intervals let one ping be late (the writer may be busy with a long
// write) and the margin covers the round trip on a slow network.
func pongWait(ping time.Duration) time.Duration {
	return 2*ping + min(ping, 5*time.Second)
}

// ServeHTTP upgrades the request and starts the connection's reader and
// writer. It returns as soon as they run.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Sec-WebSocket-Version", "13")
		transports.WriteError(w, &session.Error{Code: http.StatusBadRequest, Reason: "expected a WebSocket upgrade request"})
		return
	}
	// The upgrader checks the origin too; checking first means a cross-site
	// request never creates a session or reaches Authenticate.
	if !h.cfg.CheckOrigin(r) {
		transports.WriteError(w, transports.ErrOriginForbidden)
		return
	}
	s, refusal := h.open(r)
	hj := &hijacker{ResponseWriter: w, writers: h.cfg.Writers}
	ws, err := h.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		// The upgrader has answered the request with an HTTP error.
		if s != nil {
			s.Close(session.DisconnectBadRequest)
		}
		h.log.Debug("websocket handshake failed", "err", err)
		return
	}
	if s == nil {
		h.refuse(ws, hj, refusal)
		return
	}
	h.serve(ws, s, hj)
}

// open creates the session and authenticates the request
// (transports.Config.Open). When it refuses, it returns a nil session and the
// reason to send after the upgrade.
func (h *Handler) open(r *http.Request) (*session.Session, session.Disconnect) {
	s, refused := h.cfg.Open(r.Context(), transports.Opening{Transport: Transport, Auth: r, Framed: true})
	if refused != nil {
		return nil, refused.Disconnect
	}
	return s, session.Disconnect{}
}

// refuse tells an upgraded client why it cannot stay (invalid token,
// shutdown…) and closes. A browser cannot read the status of a failed
// handshake, so the reason travels as a disconnect frame and close code.
func (h *Handler) refuse(ws *websocket.Conn, hj *hijacker, d session.Disconnect) {
	defer ws.Close()
	out := serverOut(ws, hj)
	if out.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout)) != nil {
		return
	}
	if _, err := out.Write(appendClosing(nil, d)); err != nil {
		return
	}
	// Wait (briefly) for the client's close frame so that closing does not
	// reset the connection before the client has read ours.
	_ = ws.SetReadDeadline(time.Now().Add(h.closeGrace))
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return
		}
	}
}
