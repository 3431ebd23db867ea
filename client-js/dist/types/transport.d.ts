import type { Frame, Options, Positions } from './types.js';
/** Resolved is Options after defaults: what transports may rely on. */
export interface Resolved extends Options {
    helloTimeout: number;
    minDelay: number;
    maxDelay: number;
    maxFailures: number;
    stableAfter: number;
    upgradeInterval: number;
    rememberFor: number;
    pollTimeout: number;
    setTimeout: (fn: () => void, ms: number) => any;
    clearTimeout: (id: any) => void;
    random: () => number;
    now: () => number;
}
/** TransportEnv is what the client hands a transport when it opens one (fields start with _ so that the bundles may shorten them). */
export interface TransportEnv {
    /** _url is the server's base URL (http or https), without a trailing slash. */
    _url: string;
    /** _ch is the channel set, for transports that name it in the URL. */
    _ch: string[];
    /** _pos is a snapshot of the client's positions at open time. */
    _pos: Positions;
    /** _cursor builds a cursor from the client's current positions. */
    _cursor(): string;
    _token?: string;
    _o: Resolved;
    /** _frame receives every frame from the server, in order. */
    _frame(f: Frame): void;
    /** _end is called once when the transport ends by itself (never after Transport.close). */
    _end(code: number, reason: string): void;
}
/**
 * Transport is one open (or opening) connection. send exists only on
 * transports that carry commands (WebSocket); the others name their
 * channels in the URL and are reopened when the channel set changes.
 */
export interface Transport {
    /** send sends cmds in as few messages as the server takes: at most 100 commands and max bytes (when given) each. */
    send?(cmds: object[], max?: number): void;
    close(): void;
}
/** TransportFactory opens a transport; it throws when the environment lacks what it needs. */
export type TransportFactory = (env: TransportEnv) => Transport;
/** query builds the channel/cursor/token query string shared by SSE and long-poll. */
export declare function query(env: TransportEnv, cursor: string): string;
/** parse reads one JSON frame, or returns null. */
export declare function parse(s: string): Frame | null;
/** fail builds an Error carrying a code and a reason. */
export declare function fail(code: number, reason: string): any;
