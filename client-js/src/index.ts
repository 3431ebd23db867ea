// WaterSpout browser client: the modern build (WebSocket, SSE, long-poll, JSONP).

import { factories } from './client.js';
import { wsTransport } from './transport_ws.js';
import { sseTransport } from './transport_sse.js';
import { pollTransport } from './transport_poll.js';
import { jsonpTransport } from './transport_jsonp.js';

factories.websocket = wsTransport;
factories.sse = sseTransport;
factories.poll = pollTransport;
factories.jsonp = jsonpTransport;

export { Client, Subscription } from './client.js';
export { Codes, UnsubscribedByServer, canReconnect } from './codes.js';
export { encodeCursor, decodeCursor } from './cursor.js';
export { backoff } from './backoff.js';
export type * from './types.js';

/** version is the client's version. */
export const version = '0.1.0';
