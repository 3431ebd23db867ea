// Disconnect codes, mirrored from session/disconnect.go (and docs/PROTOCOL.md).
// Change all three together.
//
//   3000–3499  reconnect allowed: reconnect (with backoff) and resume
//   3500–3999  terminal: reconnecting with the same input fails again
//   4000–4999  reserved for applications: terminal unless the frame says reconnect:true

/** Codes is the table of disconnect codes the server sends. */
export const Codes = {
  Shutdown: 3001,
  SlowConsumer: 3002,
  InsufficientState: 3003,
  WriteTimeout: 3004,
  StaleConnection: 3005,
  InternalError: 3006,
  TokenExpired: 3007,
  RateLimited: 3008,
  BadRequest: 3500,
  MessageTooLarge: 3501,
  InvalidToken: 3502,
  Forbidden: 3503,
  /** DisconnectedByServer: a backend ended the user's connections (POST /api/disconnect); terminal. */
  DisconnectedByServer: 3504,
};

/** UnsubscribedByServer is the code of an `unsubscribed` frame: a backend ended the subscription (POST /api/unsubscribe). */
export const UnsubscribedByServer = 2000;

/**
 * canReconnect tells whether a disconnect with this code (and the frame's
 * optional `reconnect` flag) allows the client to reconnect.
 */
export function canReconnect(code: number, reconnect?: boolean): boolean {
  if (code >= 3000 && code < 3500) return true;
  return reconnect === true;
}
