import type { Transport, TransportEnv } from './transport.js';
/** sseTransport opens an EventSource. */
export declare function sseTransport(env: TransportEnv): Transport;
