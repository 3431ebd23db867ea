package server

import (
	"context"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/waterspout/waterspout/session"
)

// The server API: presence, active channels, and a backend's hand on live
// connections (POST /api/disconnect, /api/unsubscribe). Every route is
// behind the same credentials as /api/publish.

// maxControlBody bounds a disconnect or unsubscribe body.
const maxControlBody = 4 << 10

// maxUserLen bounds a user (a token's sub) named in a control request.
const maxUserLen = 256

// serverAPIRoutes registers the server API with the /api/* middleware.
func (s *Server) serverAPIRoutes(api func(echo.HandlerFunc, ...echo.MiddlewareFunc) echo.HandlerFunc) {
	e := s.echo
	calls := s.limitAPICalls
	e.GET("/api/presence", api(s.handlePresence, calls))
	e.GET("/api/presence/stats", api(s.handlePresenceStats, calls))
	e.GET("/api/channels", api(s.handleChannels, calls))
	limit := bodyLimit(func(*http.Request) int64 { return maxControlBody })
	e.POST("/api/disconnect", api(s.handleDisconnect, calls, limit))
	e.POST("/api/unsubscribe", api(s.handleUnsubscribe, calls, limit))
}

type presenceAnswer struct {
	Channel string               `json:"channel"`
	Clients []session.ClientInfo `json:"clients"`
}

type presenceStatsAnswer struct {
	Channel string `json:"channel"`
	session.PresenceStats
}

type channelsAnswer struct {
	Channels  []session.ChannelCount `json:"channels"`
	Truncated bool                   `json:"truncated,omitempty"`
}

// readableChannel reads ?channel= and checks a publisher token may read it.
func readableChannel(c echo.Context) (string, error) {
	ch := c.QueryParam("channel")
	if err := session.ValidateChannel(ch); err != nil {
		return "", err
	}
	if err := mayRead(publisherOf(c), ch); err != nil {
		return "", err
	}
	return ch, nil
}

func (s *Server) handlePresence(c echo.Context) error {
	return answerChannel(c, s.node.Presence, func(ch string, list []session.ClientInfo) any { return presenceAnswer{ch, list} })
}

func (s *Server) handlePresenceStats(c echo.Context) error {
	return answerChannel(c, s.node.PresenceStats, func(ch string, st session.PresenceStats) any { return presenceStatsAnswer{ch, st} })
}

// answerChannel answers a GET about the channel of ?channel=, which the
// request must be allowed to read: ask looks the channel up, answer wraps
// what it found with the channel's name.
func answerChannel[T any](c echo.Context, ask func(context.Context, string) (T, error), answer func(string, T) any) error {
	ch, err := readableChannel(c)
	if err != nil {
		return err
	}
	v, err := ask(c.Request().Context(), ch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, answer(ch, v))
}

// handleChannels lists the channels with subscribers. A publisher token
// sees only the channels it may read.
func (s *Server) handleChannels(c echo.Context) error {
	prefix := c.QueryParam("prefix")
	if len(prefix) > session.MaxChannelLen || !utf8.ValidString(prefix) {
		return apiError(http.StatusBadRequest, "prefix is longer than a channel name or not UTF-8")
	}
	var keep func(string) bool
	if p := publisherOf(c); p != nil && p.claims != nil {
		keep = func(ch string) bool { return mayRead(p, ch) == nil }
	}
	list, truncated, err := s.node.ChannelsMatching(c.Request().Context(), prefix, keep)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, channelsAnswer{list, truncated})
}

// controlRequest is a decoded disconnect or unsubscribe body.
type controlRequest struct {
	User    string `json:"user"`
	Client  string `json:"client,omitempty"`
	Channel string `json:"channel,omitempty"`
}

// decodeControl parses {"user","client"?} (disconnect) or
// {"user","channel"} (unsubscribe); unknown fields are refused, so that a
// misspelt "client" cannot disconnect every connection of the user.
func decodeControl(contentType string, body []byte, unsubscribe bool) (controlRequest, error) {
	if err := onlyJSON(contentType, "Content-Type must be application/json"); err != nil {
		return controlRequest{}, err
	}
	// decodeStrict refuses invalid UTF-8 and lone surrogate escapes, which
	// encoding/json would turn into U+FFFD: "\uD800" must not name the user
	// "\uFFFD".
	var req controlRequest
	example := `{"user":"alice","client":"<session id>"}`
	if unsubscribe {
		example = `{"user":"alice","channel":"room:1"}`
	}
	if err := decodeStrict(body, &req, example); err != nil {
		return controlRequest{}, err
	}
	switch {
	case req.User == "" || len(req.User) > maxUserLen || !utf8.ValidString(req.User):
		return controlRequest{}, apiError(http.StatusBadRequest, "user must be 1..%d bytes of UTF-8", maxUserLen)
	case len(req.Client) > 64 || strings.IndexFunc(req.Client, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0:
		return controlRequest{}, apiError(http.StatusBadRequest, "client is not a session id")
	case unsubscribe && req.Client != "":
		return controlRequest{}, apiError(http.StatusBadRequest, "unsubscribe takes user and channel, not client")
	case !unsubscribe && req.Channel != "":
		return controlRequest{}, apiError(http.StatusBadRequest, "disconnect takes user and client, not channel")
	}
	if unsubscribe {
		if err := session.ValidateChannel(req.Channel); err != nil {
			return controlRequest{}, err
		}
	}
	return req, nil
}

// handleDisconnect ends every connection of a user (or one, by client).
// Only an API key (or the open loopback API) may: a publisher token grants
// channels, not users.
func (s *Server) handleDisconnect(c echo.Context) error {
	if p := publisherOf(c); p != nil && p.claims != nil {
		return apiError(http.StatusForbidden, "disconnect needs an API key, not a publisher token")
	}
	req, err := decodeBody(c, func(contentType string, body []byte) (controlRequest, error) {
		return decodeControl(contentType, body, false)
	})
	if err != nil {
		return err
	}
	if err := s.node.Disconnect(c.Request().Context(), req.User, req.Client); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct{}{})
}

// handleUnsubscribe ends a user's subscriptions to a channel; a publisher
// token may do it on the channels it may publish to.
func (s *Server) handleUnsubscribe(c echo.Context) error {
	req, err := decodeBody(c, func(contentType string, body []byte) (controlRequest, error) {
		return decodeControl(contentType, body, true)
	})
	if err != nil {
		return err
	}
	if err := mayPublish(publisherOf(c), req.Channel); err != nil {
		return err
	}
	if err := s.node.UnsubscribeUser(c.Request().Context(), req.User, req.Channel); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct{}{})
}
