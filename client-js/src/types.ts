// Public types shared by the client and its transports.

/** TransportName names one way of reaching the server, in the client's vocabulary. */
export type TransportName = 'websocket' | 'sse' | 'poll' | 'jsonp';

/** State is the connection state reported by the `state` event. */
export type State = 'disconnected' | 'connecting' | 'connected';

/** Position is where a channel's stream stands: its epoch and the last offset seen. */
export interface Position {
  epoch: string;
  offset: number;
}

/** Positions maps channel names to positions. */
export interface Positions {
  [channel: string]: Position;
}

/** Limits are the server's limits, from the hello frame. */
export interface Limits {
  maxMessageBytes?: number;
  maxChannels?: number;
  maxQueueBytes?: number;
}

/** Frame is any server → client frame. */
export interface Frame {
  type: string;
  id?: number;
  session?: string;
  transport?: string;
  ping?: number;
  limits?: Limits;
  channel?: string;
  offset?: number;
  epoch?: string;
  data?: unknown;
  key?: string;
  time?: number;
  recovered?: boolean;
  code?: number;
  reason?: string;
  reconnect?: boolean;
  client?: string;
  user?: string;
  clients?: any;
  users?: number;
}

/** ClientInfo is one presence entry, and what a join or leave is about. */
export interface ClientInfo {
  client: string;
  user: string;
}

/** PresenceStats counts a channel's clients and distinct users. */
export interface PresenceStats {
  clients: number;
  users: number;
}

/** Unsubscribed says why the server ended a subscription (code 2000: a backend did). */
export interface Unsubscribed {
  channel: string;
  code: number;
  reason: string;
}

/** MessageContext comes with every message: the frame itself. */
export interface MessageContext {
  channel: string;
  offset: number;
  epoch: string;
  data: unknown;
  key?: string;
  time?: number;
}

/** SubscribedContext comes with every `subscribed` frame. */
export interface SubscribedContext {
  channel: string;
  epoch: string;
  offset: number;
  recovered?: boolean;
}

/**
 * Recovery reports the outcome of resuming a channel. recovered:false means
 * messages may have been missed: `reason` says how it was found out:
 * 'history' (the server could not replay from the position), 'gap' (an offset
 * was skipped; `from`..`to` are the missing offsets) or 'epoch' (the channel's
 * history was reset).
 */
export interface Recovery {
  channel: string;
  recovered: boolean;
  epoch: string;
  offset: number;
  reason?: 'history' | 'gap' | 'epoch';
  from?: number;
  to?: number;
}

/** WaterSpoutError is an Error with the server's (or the client's) code. */
export interface WaterSpoutError extends Error {
  code: number;
  reason: string;
}

/** PublishResult is where a publication landed. */
export interface PublishResult {
  channel: string;
  offset: number;
  epoch: string;
}

/** Disconnect describes why a connection ended. */
export interface DisconnectInfo {
  code: number;
  reason: string;
  reconnect: boolean;
}

/** SubscriptionHandlers are the callbacks of one channel subscription. */
export interface SubscriptionHandlers {
  message?(data: unknown, ctx: MessageContext): void;
  subscribed?(ctx: SubscribedContext): void;
  recovered?(r: Recovery): void;
  error?(err: WaterSpoutError): void;
  /** join: a client subscribed to the channel (namespaces with joinLeave). Not recovered after a reconnect. */
  join?(info: ClientInfo): void;
  /** leave: a client left the channel (namespaces with joinLeave). */
  leave?(info: ClientInfo): void;
  /** unsubscribed: the server ended the subscription; the client does not subscribe again. */
  unsubscribed?(u: Unsubscribed): void;
}

/** SubscribeOptions tune one subscription. */
export interface SubscribeOptions {
  /** since resumes from a position the application saved earlier; one the server would refuse fails with 400 `invalid since`. */
  since?: Position;
  /** token is a channel token sent with the subscribe command (WebSocket only: a long-poll refusal of the channel sets the subscription aside until WebSocket). */
  token?: string;
}

/** Callback receives an error or a result, node style. */
export type Callback<T> = (err: WaterSpoutError | null, result?: T) => void;

/**
 * JsonpInjector loads `url + '&callback=' + name` as a script and calls
 * done(null, data) when the script calls back, done(err) when it fails.
 * It returns a function that cancels the request.
 */
export type JsonpInjector = (url: string, done: (err: Error | null, data?: unknown) => void) => () => void;

/** StorageLike is the part of localStorage the client uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** EventTargetLike is what the client listens to for online/offline and visibility events. */
export interface EventTargetLike {
  addEventListener(type: string, fn: () => void, capture?: boolean): void;
  removeEventListener(type: string, fn: () => void, capture?: boolean): void;
}

/** Options configure a Client. Every field is optional. */
export interface Options {
  /** token is the connection token (JWT). */
  token?: string;
  /**
   * getToken fetches a fresh token: it may return the token, a Promise of it,
   * or call cb(err, token). It is called before the first connect when there
   * is no token, when the server says the token expired (3007), and once
   * when it says the token is invalid (3502).
   */
  getToken?: (cb: Callback<string>) => PromiseLike<string> | string | void;
  /** transports is the order to try; default websocket, sse, poll, jsonp. */
  transports?: TransportName[];
  /** helloTimeout (ms): a transport that sends no hello in this time has failed. Default 5000. */
  helloTimeout?: number;
  /** minDelay and maxDelay (ms) bound the reconnect backoff. Default 500 and 20000. */
  minDelay?: number;
  maxDelay?: number;
  /** maxFailures: drops in a row (each within stableAfter of opening) before falling back. Default 3. */
  maxFailures?: number;
  /** stableAfter (ms): a connection that lived this long resets the failure count and backoff. Default 10000. */
  stableAfter?: number;
  /** upgradeInterval (ms): how often to probe a better transport while on a fallback (±25% jitter); 0 turns probing off, except that a subscription waiting for WebSocket has it probed every 60000. Default 60000. */
  upgradeInterval?: number;
  /** rememberFor (ms): how long the transport that worked is remembered per endpoint. Default 86400000 (a day); 0 turns it off. */
  rememberFor?: number;
  /** pollTimeout (ms): a long-poll request that takes longer has failed. Default 40000. */
  pollTimeout?: number;

  // Injection points, for tests and unusual environments.
  WebSocket?: any;
  EventSource?: any;
  XMLHttpRequest?: any;
  jsonp?: JsonpInjector;
  storage?: StorageLike | null;
  /** events receives online/offline listeners (default window). */
  events?: EventTargetLike | null;
  /** document receives the visibilitychange listener (default document). */
  document?: (EventTargetLike & { hidden?: boolean }) | null;
  setTimeout?: (fn: () => void, ms: number) => any;
  clearTimeout?: (id: any) => void;
  random?: () => number;
  now?: () => number;
}
