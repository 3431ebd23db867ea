export { Client, Subscription } from './client.js';
export { Codes, UnsubscribedByServer, canReconnect } from './codes.js';
export { encodeCursor, decodeCursor } from './cursor.js';
export { backoff } from './backoff.js';
export type * from './types.js';
/** version is the client's version. */
export declare const version = "0.1.0";
