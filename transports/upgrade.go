package transports

import (
	"net/http"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/waterspout/waterspout/session"
)

// wsWriteBufferSize is the write buffer of a WebSocket upgraded by
// Config.Upgrader. Write buffers come from the upgrader's pool and are held
// only while a message is written, so they may be large enough for a
// typical batch to go out in one system call.
const wsWriteBufferSize = 4096

// Upgrader returns the WebSocket handshake of both WebSocket endpoints
// (ws, and SockJS's websocket transport): gorilla's, with c's origin check
// and write timeout, no compression (about 1 MiB per writer, and nothing
// saved on small frames), write buffers from a pool of the upgrader's own
// rather than one per connection, and a refused handshake answered with
// the JSON error body. readBufferSize is the connection's read buffer (0:
// the hijacked connection's).
func (c *Config) Upgrader(readBufferSize int) *websocket.Upgrader {
	return &websocket.Upgrader{
		HandshakeTimeout:  c.WriteTimeout,
		ReadBufferSize:    readBufferSize,
		WriteBufferSize:   wsWriteBufferSize,
		WriteBufferPool:   &sync.Pool{},
		CheckOrigin:       c.CheckOrigin,
		EnableCompression: false,
		Error:             handshakeError,
	}
}

// handshakeError answers a handshake the upgrader refused. A 400 names the
// one WebSocket version spoken, as RFC 6455 §4.4 asks.
func handshakeError(w http.ResponseWriter, _ *http.Request, status int, reason error) {
	if status == http.StatusBadRequest {
		w.Header().Set("Sec-WebSocket-Version", "13")
	}
	WriteError(w, &session.Error{Code: status, Reason: strings.TrimPrefix(reason.Error(), "websocket: ")})
}
