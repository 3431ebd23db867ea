package transports

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/waterspout/waterspout/session"
)

// A handshake the upgrader refuses is answered like every other error: its
// status with the JSON error body; a 400 names the WebSocket version spoken.
func TestUpgraderRefusal(t *testing.T) {
	cfg := Config{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "" }}
	for _, tc := range []struct {
		name, origin, version string
		status                int
	}{
		{"unsupported version", "", "8", http.StatusBadRequest},
		{"origin refused", "http://evil.example", "13", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/connect/ws", nil)
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Sec-WebSocket-Version", tc.version)
			r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			w := httptest.NewRecorder()
			if _, err := cfg.Upgrader(0).Upgrade(w, r, nil); err == nil {
				t.Fatal("upgraded")
			}
			var body struct{ Error *session.Error }
			if w.Code != tc.status || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error == nil || body.Error.Code != tc.status || body.Error.Reason == "" {
				t.Fatalf("answered %d %s, want %d with the JSON error body", w.Code, w.Body, tc.status)
			}
			if got, want := w.Header().Get("Sec-WebSocket-Version"), map[bool]string{true: "13"}[tc.status == 400]; got != want {
				t.Errorf("Sec-WebSocket-Version %q, want %q", got, want)
			}
		})
	}
}
