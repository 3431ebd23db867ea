// WaterSpout browser client: the legacy ES5 build. Long-poll over XHR, then
// JSONP; it never touches Promise (unless present), fetch, WebSocket or EventSource.

import { factories } from './client.js';
import { pollTransport } from './transport_poll.js';
import { jsonpTransport } from './transport_jsonp.js';

factories.poll = pollTransport;
factories.jsonp = jsonpTransport;

export { Client, Subscription } from './client.js';
export { Codes, canReconnect } from './codes.js';
export { encodeCursor, decodeCursor } from './cursor.js';
export { backoff } from './backoff.js';
export type * from './types.js';

/** version is the client's version. */
export const version = '0.1.0';
