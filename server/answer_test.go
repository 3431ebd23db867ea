package server

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/transports"
)

// TestPublishAnswerIsWhatJSONWrites pins the hand-appended publish answer:
// for every answer, plain or not, with a query or without, it is the very
// answer c.JSON writes (status, headers, bytes with the trailing newline),
// and the usual one is exactly the JSON the API documents.
func TestPublishAnswerIsWhatJSONWrites(t *testing.T) {
	e := echo.New()
	answer := func(target string, a transports.PublishAnswer, write func(echo.Context, transports.PublishAnswer) error) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		if err := write(e.NewContext(httptest.NewRequest(http.MethodPost, target, nil), rec), a); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	byJSON := func(c echo.Context, a transports.PublishAnswer) error { return c.JSON(http.StatusOK, a) }
	for _, tt := range []struct {
		name   string
		target string
		a      transports.PublishAnswer
	}{
		{"usual", "/api/publish", transports.PublishAnswer{Channel: "news", Offset: 7, Epoch: "Xk3-_q"}},
		{"every channel character", "/api/publish", transports.PublishAnswer{Channel: "azAZ09_-:#.@=", Offset: 1, Epoch: "e"}},
		{"offset 0, no epoch", "/api/publish", transports.PublishAnswer{Channel: "a", Offset: 0, Epoch: ""}},
		{"largest offset", "/api/publish", transports.PublishAnswer{Channel: "a", Offset: math.MaxUint64, Epoch: "e"}},
		{"channel escaped by JSON", "/api/publish", transports.PublishAnswer{Channel: `<a&"b\>`, Offset: 1, Epoch: "e"}},
		{"epoch escaped by JSON", "/api/publish", transports.PublishAnswer{Channel: "a", Offset: 1, Epoch: "é\n\x7f"}},
		{"pretty", "/api/publish?pretty", transports.PublishAnswer{Channel: "news", Offset: 7, Epoch: "e"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := answer(tt.target, tt.a, writePublishAnswer)
			want := answer(tt.target, tt.a, byJSON)
			if got.Code != want.Code || got.Body.String() != want.Body.String() {
				t.Fatalf("answered %d %q, c.JSON %d %q", got.Code, got.Body, want.Code, want.Body)
			}
			if g, w := got.Header().Get("Content-Type"), want.Header().Get("Content-Type"); g != w {
				t.Fatalf("Content-Type %q, c.JSON %q", g, w)
			}
		})
	}
	got := answer("/api/publish", transports.PublishAnswer{Channel: "news", Offset: 7, Epoch: "Xk3"}, writePublishAnswer)
	if want := `{"channel":"news","offset":7,"epoch":"Xk3"}` + "\n"; got.Body.String() != want {
		t.Fatalf("answer %q, want %q", got.Body, want)
	}
}
