import type { Transport, TransportEnv } from './transport.js';
/** wsTransport opens GET /connect/ws. */
export declare function wsTransport(env: TransportEnv): Transport;
