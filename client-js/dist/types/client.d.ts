import type { TransportFactory } from './transport.js';
import type { Callback, ClientInfo, DisconnectInfo, Frame, Limits, Options, Position, PresenceStats, PublishResult, Recovery, State, SubscribeOptions, SubscriptionHandlers, TransportName, WaterSpoutError } from './types.js';
/** factories maps transport names to implementations; each bundle registers the ones it ships. */
export declare const factories: {
    [name: string]: TransportFactory;
};
/**
 * Subscription is one channel subscription; unsubscribe() ends it.
 */
export declare class Subscription {
    /** channel is the subscribed channel's name. */
    readonly channel: string;
    private _c;
    constructor(client: Client, channel: string, handlers: SubscriptionHandlers, token?: string);
    /** unsubscribe stops delivery on this channel and forgets its position. */
    unsubscribe(): void;
    /** position returns the last position seen on this channel, to resume from later with `since`. */
    position(): Position | undefined;
    /**
     * presence lists the channel's clients, on every node (namespaces with
     * presence; WebSocket only). It returns a Promise when no callback is given.
     */
    presence(): Promise<ClientInfo[]>;
    presence(cb: Callback<ClientInfo[]>): void;
    /** presenceStats counts the channel's clients and distinct users, like presence. */
    presenceStats(): Promise<PresenceStats>;
    presenceStats(cb: Callback<PresenceStats>): void;
}
/**
 * Client connects to one WaterSpout server and keeps the connection alive:
 * it picks the best transport that works, falls back, upgrades in the
 * background, reconnects with backoff and resumes every channel from its
 * position.
 */
export declare class Client {
    /** url is the server's base URL. */
    readonly url: string;
    /** state is the connection state (see the `state` event). */
    state: State;
    /** transport is the transport in use while connected. */
    transport: TransportName | null;
    /** session is the server's session id from the last hello. */
    session: string | null;
    /**
     * presenceId is the id presence, join and leave list this client under:
     * the session on a streaming transport; on long-poll and JSONP the
     * hello's `client`, which others cannot claim with.
     */
    presenceId: string | null;
    /** limits are the server's limits from the last hello. */
    limits: Limits | null;
    private _o;
    private _order;
    private _subs;
    private _pos;
    private _ls;
    private _cur;
    private _probe;
    private _idx;
    private _next;
    private _drops;
    private _n;
    private _want;
    private _gen;
    private _timer;
    private _ptimer;
    private _rtimer;
    private _id;
    private _pending;
    private _queue;
    private _token?;
    private _retried;
    private _fresh;
    private _why;
    private _wake;
    constructor(url: string, options?: Options);
    /** on adds a listener for 'state', 'transport', 'disconnect', 'recovery' or 'error'. */
    on(event: 'state', fn: (state: State) => void): this;
    on(event: 'transport', fn: (name: TransportName, hello: Frame) => void): this;
    on(event: 'disconnect', fn: (info: DisconnectInfo) => void): this;
    on(event: 'recovery', fn: (r: Recovery) => void): this;
    on(event: 'error', fn: (err: WaterSpoutError) => void): this;
    /** off removes a listener added with on. */
    off(event: string, fn: Function): this;
    private _emit;
    private _call;
    private _setState;
    /** connect starts connecting (and keeps reconnecting until disconnect or a terminal error). */
    connect(): this;
    /** disconnect closes the connection and stops reconnecting; subscriptions and positions are kept. */
    disconnect(): this;
    /**
     * subscribe starts delivery on a channel. handlers may be an object of
     * callbacks or just the message callback. One subscription per channel.
     */
    subscribe(channel: string, handlers?: SubscriptionHandlers | ((data: unknown, ctx: any) => void), options?: SubscribeOptions): Subscription;
    /** subscription returns the subscription of a channel, if any. */
    subscription(channel: string): Subscription | undefined;
    /** position returns the last position seen on a channel. */
    position(channel: string): Position | undefined;
    /**
     * publish sends data to a channel (over the WebSocket, or POST
     * /connect/publish on other transports). It returns a Promise when no
     * callback is given and Promise exists; otherwise it calls cb(err, result).
     * A publish made while connecting waits for the connection.
     *
     * The overloads are what callers rely on: without a callback the result is
     * a Promise (the legacy bundle on an ES5 browser without Promise returns
     * undefined: pass a callback there).
     */
    publish(channel: string, data: unknown): Promise<PublishResult>;
    publish(channel: string, data: unknown, cb: Callback<PublishResult>): void;
    /** setToken replaces the connection token; on a live WebSocket it is sent at once (auth). */
    setToken(token: string): void;
    private _ask;
    private _command;
    private _subCmd;
    private _pub;
    private _failPending;
    private _chans;
    private _wait;
    private _fits;
    private _drop;
    private _unsub;
    private _changed;
    private _restartSoon;
    private _make;
    private _start;
    private _kill;
    private _down;
    private _stop;
    private _retry;
    private _delay;
    private _failover;
    private _refresh;
    private _listen;
    private _remembered;
    private _remember;
    private _schedProbe;
    private _closed;
    private _refused;
    private _stable;
    private _lost;
    private _frame;
    private _hello;
    private _recovery;
    private _msg;
    private _subd;
}
