package session

import (
	"context"
	"errors"
	"time"
)

// HandleCommand runs every command in one incoming frame (WebSocket, SockJS)
// and queues their replies. Bad input is answered with an error frame; the
// session stays open. Commands over Config.CommandRate are answered with
// error 429 and not run, and a session that keeps sending past it ends with
// DisconnectRateLimited. It returns an error only when the session has
// closed. It keeps no reference to frame, so transports may reuse read
// buffers.
func (s *Session) HandleCommand(ctx context.Context, frame []byte) error {
	if len(frame) > s.node.cfg.Limits.MaxMessageBytes {
		s.fail(DisconnectMessageTooLarge)
		return DisconnectMessageTooLarge
	}
	now := time.Now()
	cmds, err := DecodeCommands(frame)
	if err != nil {
		return s.answerUndecodable(now, ErrorFrame(0, err))
	}
	for i := range cmds {
		allowed, abusive := s.takeCommand(now)
		var reply []byte
		switch {
		case abusive:
			return s.rateLimited()
		case allowed:
			reply = s.run(ctx, &cmds[i])
		default:
			s.node.limited(LimitCommands)
			reply = ErrorFrame(cmds[i].ID, ErrRateLimited)
		}
		if reply != nil && !s.Send(reply) {
			return ErrClosed
		}
	}
	return nil
}

// answerUndecodable queues the error answering a frame that could not be
// decoded; such a frame costs one command, like any other.
func (s *Session) answerUndecodable(now time.Time, reply []byte) error {
	allowed, abusive := s.takeCommand(now)
	switch {
	case abusive:
		return s.rateLimited()
	case !allowed:
		s.node.limited(LimitCommands)
		reply = ErrorFrame(0, ErrRateLimited)
	}
	if !s.Send(reply) {
		return ErrClosed
	}
	return nil
}

// rateLimited ends a session that went on sending commands past its limit.
// The replies and 429 errors already queued still go out first: a client
// that sent every command in one frame sees what one that sent them in
// separate frames sees, not a bare disconnect.
func (s *Session) rateLimited() error {
	s.node.limited(LimitCommands)
	s.endAfterQueued(DisconnectRateLimited)
	return DisconnectRateLimited
}

// run executes one command and returns the frame to send, if any (a
// successful subscribe queues its own frames).
func (s *Session) run(ctx context.Context, c *Command) []byte {
	switch c.Type {
	case "subscribe":
		err := s.Subscribe(ctx, SubscribeRequest{ID: c.ID, Channel: c.Channel, Since: c.Since, Token: c.Token})
		if errors.Is(err, ErrClosed) {
			return nil
		}
		if err != nil {
			return ErrorFrame(c.ID, err)
		}
		return nil
	case "unsubscribe":
		if err := s.Unsubscribe(c.Channel); err != nil {
			return ErrorFrame(c.ID, err)
		}
		return mustJSON(replyFrame{Type: "reply", ID: c.ID, Channel: c.Channel})
	case "publish":
		res, err := s.node.ClientPublish(ctx, s, c.Channel, c.Data, c.Key)
		if err != nil {
			return ErrorFrame(c.ID, err)
		}
		return mustJSON(replyFrame{Type: "reply", ID: c.ID, Channel: res.Channel, Offset: res.Offset, Epoch: res.Epoch})
	case "ping":
		return mustJSON(replyFrame{Type: "reply", ID: c.ID})
	case "presence", "presence_stats":
		return s.presenceCommand(ctx, c)
	case "auth":
		if s.node.cfg.Authorizer == nil {
			return ErrorFrame(c.ID, &Error{400, "this server does not use tokens"})
		}
		if ta, ok := s.node.cfg.Authorizer.(TokenAuthorizer); ok {
			if err := ta.Refresh(s, c.Token); err != nil {
				return ErrorFrame(c.ID, err)
			}
			return mustJSON(replyFrame{Type: "reply", ID: c.ID})
		}
		return ErrorFrame(c.ID, &Error{400, "this server does not use tokens"})
	default:
		return ErrorFrame(c.ID, badRequest("unknown command type %q", truncate(c.Type, 32)))
	}
}

// TokenAuthorizer is an Authorizer that accepts fresh connection tokens on a
// live session (the `auth` command).
type TokenAuthorizer interface {
	Authorizer
	Refresh(s *Session, token string) error
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
