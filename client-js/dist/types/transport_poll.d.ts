import type { Transport, TransportEnv, Resolved } from './transport.js';
import type { Frame } from './types.js';
/** PollAnswer is the body of a long-poll response, or the error that refused it. */
export interface PollAnswer {
    messages: Frame[];
    cursor: string;
    error?: {
        code: number;
        reason: string;
    };
}
/** Requester performs one poll: it calls done(answer) or done(null) on failure and returns a cancel function. */
export type Requester = (url: string, q: string, done: (a: PollAnswer | null) => void) => () => void;
/**
 * xhr sends one request and calls done(status, parsed JSON body or undefined).
 * It returns an abort function.
 */
export declare function xhr(o: Resolved, method: string, url: string, body: string | null, type: string | null, done: (status: number, body: any) => void): () => void;
/** pollLoop runs a long-poll session over a requester. */
export declare function pollLoop(env: TransportEnv, request: Requester): Transport;
/** pollTransport long-polls with XHR; a channel list too long for a URL goes as a POST form. */
export declare function pollTransport(env: TransportEnv): Transport;
