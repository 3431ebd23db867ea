package session

import (
	"context"
	"errors"
)

// HandleCommand runs every command in one incoming frame (WebSocket, SockJS)
// and queues their replies. Bad input is answered with an error frame; the
// session stays open. It returns an error only when the session has closed.
// It keeps no reference to frame, so transports may reuse read buffers.
func (s *Session) HandleCommand(ctx context.Context, frame []byte) error {
	if len(frame) > s.node.cfg.Limits.MaxMessageBytes {
		s.fail(DisconnectMessageTooLarge)
		return DisconnectMessageTooLarge
	}
	cmds, err := DecodeCommands(frame)
	if err != nil {
		if !s.Send(ErrorFrame(0, err)) {
			return ErrClosed
		}
		return nil
	}
	for i := range cmds {
		reply := s.run(ctx, &cmds[i])
		if reply != nil && !s.Send(reply) {
			return ErrClosed
		}
	}
	return nil
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
