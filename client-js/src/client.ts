// The Client: subscriptions and positions, transport choice and fallback,
// background upgrade, reconnect and resume.
//
// Every transport feeds frames into one place (frame), so positions, dedupe
// and gap detection are the same whichever transport carried a message. A
// connection attempt is an Attempt; callbacks from an attempt that was killed
// are ignored, which is what makes overlapping transports (a probe opening
// while the old transport still delivers) safe.

import { backoff } from './backoff.js';
import { Codes, canReconnect } from './codes.js';
import { encodeCursor } from './cursor.js';
import { fail } from './transport.js';
import type { Resolved, Transport, TransportFactory } from './transport.js';
import { xhr } from './transport_poll.js';
import type {
  Callback,
  ClientInfo,
  DisconnectInfo,
  Frame,
  Limits,
  Options,
  Position,
  Positions,
  PresenceStats,
  PublishResult,
  Recovery,
  State,
  SubscribeOptions,
  SubscribedContext,
  SubscriptionHandlers,
  TransportName,
  WaterSpoutError,
} from './types.js';

/** factories maps transport names to implementations; each bundle registers the ones it ships. */
export const factories: { [name: string]: TransportFactory } = {};

/** Attempt is one transport connection, from opening until it is killed. */
interface Attempt {
  _i: number; // index in the transport order
  _t: Transport | null;
  _open: boolean; // hello received
  _dead: boolean;
  _at: number; // when hello arrived
  _timer: any; // hello timeout, then heartbeat watchdog
  _live: number; // heartbeat window in ms, 0 = none
  _ch: string; // channel set the attempt was opened with
  _r?: boolean; // replaces the current attempt with a new channel set
}

// A channel name as the server's session.ValidateChannel takes it: 1 to 255
// bytes of ASCII letters, digits and _ - : # . @ =.
const CHANNEL = /^[\w\-:#.@=]{1,255}$/;
// An epoch as session.ValidEpoch takes it.
const EPOCH = /^[\w-]{1,64}$/;

type Queued = [string, unknown, Callback<PublishResult>];

const DEFAULTS = {
  helloTimeout: 5000,
  minDelay: 500,
  maxDelay: 20000,
  maxFailures: 3,
  stableAfter: 10000,
  upgradeInterval: 60000,
  rememberFor: 86400000,
  pollTimeout: 40000,
};

function callToken(fn: NonNullable<Options['getToken']>, done: (err: any, t?: string) => void): void {
  let called = false;
  function once(e: any, t?: string) {
    if (called) return;
    called = true;
    done(e, t);
  }
  try {
    const r: any = fn(once);
    if (r && typeof r.then === 'function') {
      r.then(
        function (t: string) {
          once(null, t);
        },
        function (e: any) {
          once(e || fail(401, 'getToken failed'));
        },
      );
    } else if (typeof r === 'string') once(null, r);
  } catch (e) {
    once(e);
  }
}

// dict makes a map keyed by channel name or command id. It has no
// prototype: `constructor`, `toString` and `__proto__` are channel names
// like any other, and a frame naming one finds nothing there.
function dict(): any {
  return Object.create(null);
}

// promised runs fn with cb, or with a callback that settles the Promise it
// returns when there is no cb (and Promise exists).
function promised<T>(cb: Callback<T> | undefined, fn: (done: Callback<T>) => void): Promise<T> | undefined {
  let p: any;
  if (!cb && typeof Promise !== 'undefined') {
    p = new Promise(function (res, rej) {
      cb = function (e, r) {
        if (e) rej(e);
        else res(r!);
      };
    });
  }
  fn(cb || function () {});
  return p;
}

/**
 * Subscription is one channel subscription; unsubscribe() ends it.
 */
export class Subscription {
  /** channel is the subscribed channel's name. */
  readonly channel: string;
  private _c: Client;
  /** @internal */
  _h: SubscriptionHandlers;
  /** @internal */
  _tok?: string;
  /** @internal the id of this subscription's subscribe command on the WebSocket */
  _id?: number;
  /** @internal a poll or SSE request refused this subscription's channel, and only WebSocket carries its token: it waits for WebSocket */
  _off?: boolean;
  /** @internal the poll or SSE attempt that was live when this subscription was made: what it delivers on the channel is an earlier subscription's */
  _w?: Attempt | null;

  constructor(client: Client, channel: string, handlers: SubscriptionHandlers, token?: string) {
    this._c = client;
    this.channel = channel;
    this._h = handlers;
    this._tok = token;
  }

  /** unsubscribe stops delivery on this channel and forgets its position. */
  unsubscribe(): void {
    (this._c as any)._unsub(this);
  }

  /** position returns the last position seen on this channel, to resume from later with `since`. */
  position(): Position | undefined {
    return this._c.position(this.channel);
  }

  /**
   * presence lists the channel's clients, on every node (namespaces with
   * presence; WebSocket only). It returns a Promise when no callback is given.
   */
  presence(): Promise<ClientInfo[]>;
  presence(cb: Callback<ClientInfo[]>): void;
  presence(cb?: Callback<ClientInfo[]>): Promise<ClientInfo[]> | undefined {
    return (this._c as any)._ask('presence', this.channel, cb, 'clients');
  }

  /** presenceStats counts the channel's clients and distinct users, like presence. */
  presenceStats(): Promise<PresenceStats>;
  presenceStats(cb: Callback<PresenceStats>): void;
  presenceStats(cb?: Callback<PresenceStats>): Promise<PresenceStats> | undefined {
    return (this._c as any)._ask('presence_stats', this.channel, cb);
  }
}

/**
 * Client connects to one WaterSpout server and keeps the connection alive:
 * it picks the best transport that works, falls back, upgrades in the
 * background, reconnects with backoff and resumes every channel from its
 * position.
 */
export class Client {
  /** url is the server's base URL. */
  readonly url: string;
  /** state is the connection state (see the `state` event). */
  state: State = 'disconnected';
  /** transport is the transport in use while connected. */
  transport: TransportName | null = null;
  /** session is the server's session id from the last hello. */
  session: string | null = null;
  /**
   * presenceId is the id presence, join and leave list this client under:
   * the session on a streaming transport; on long-poll and JSONP the
   * hello's `client`, which others cannot claim with.
   */
  presenceId: string | null = null;
  /** limits are the server's limits from the last hello. */
  limits: Limits | null = null;

  private _o: Resolved;
  private _order: TransportName[];
  private _subs: { [channel: string]: Subscription } = dict();
  private _pos: Positions = dict();
  private _ls: { [event: string]: Function[] } = {};
  private _cur: Attempt | null = null;
  private _probe: Attempt | null = null;
  private _idx = 0;
  private _next = 0;
  private _drops = 0;
  private _n = 0;
  private _want = false;
  private _gen = 0;
  private _timer: any = null;
  private _ptimer: any = null;
  private _rtimer: any = null;
  private _id = 0;
  private _pending: { [id: string]: (f: Frame) => void } = dict();
  private _queue: Queued[] = [];
  private _token?: string;
  private _retried = false; // a 3502 was answered with a fresh token, and no hello since
  private _fresh = false; // the token was refreshed, and no hello since
  private _why: WaterSpoutError | null = null; // the last refusal a transport could read, for the `error` event
  private _wake: () => void;

  constructor(url: string, options?: Options) {
    const self = this;
    const o: any = options || {};
    const r: any = {};
    for (const k in o) r[k] = o[k];
    for (const k in DEFAULTS) r[k] = o[k] == null ? (DEFAULTS as any)[k] : o[k];
    r.setTimeout =
      o.setTimeout ||
      function (f: () => void, ms: number) {
        return setTimeout(f, ms);
      };
    r.clearTimeout =
      o.clearTimeout ||
      function (id: any) {
        clearTimeout(id);
      };
    r.random = o.random || Math.random;
    r.now =
      o.now ||
      function () {
        return new Date().getTime();
      };
    if (!('XMLHttpRequest' in o)) r.XMLHttpRequest = typeof XMLHttpRequest !== 'undefined' ? XMLHttpRequest : null;
    if (!('storage' in o)) {
      r.storage = null;
      try {
        r.storage = typeof localStorage !== 'undefined' ? localStorage : null;
      } catch (e) {
        // Storage can be blocked (privacy settings, sandboxed iframes).
      }
    }
    if (!('events' in o)) r.events = typeof window !== 'undefined' ? window : null;
    if (!('document' in o)) r.document = typeof document !== 'undefined' ? document : null;
    this._o = r;

    if (!/^[a-z]+:/i.test(url) && typeof location !== 'undefined') url = location.protocol + '//' + location.host + url;
    this.url = url.replace(/^ws/, 'http').replace(/\/+$/, '');
    this._token = o.token;
    const order: TransportName[] = o.transports || ['websocket', 'sse', 'poll', 'jsonp'];
    this._order = [];
    for (let i = 0; i < order.length; i++) if (factories[order[i]]) this._order.push(order[i]);
    if (!this._order.length) throw new Error('WaterSpout: no usable transport');
    this._wake = function () {
      const d = self._o.document;
      if (self._timer && !(d && d.hidden)) {
        self._o.clearTimeout(self._timer);
        self._n = 0;
        self._start();
      }
    };
  }

  // ---- events ----

  /** on adds a listener for 'state', 'transport', 'disconnect', 'recovery' or 'error'. */
  on(event: 'state', fn: (state: State) => void): this;
  on(event: 'transport', fn: (name: TransportName, hello: Frame) => void): this;
  on(event: 'disconnect', fn: (info: DisconnectInfo) => void): this;
  on(event: 'recovery', fn: (r: Recovery) => void): this;
  on(event: 'error', fn: (err: WaterSpoutError) => void): this;
  on(event: string, fn: (...args: any[]) => void): this {
    (this._ls[event] || (this._ls[event] = [])).push(fn);
    return this;
  }

  /** off removes a listener added with on. */
  off(event: string, fn: Function): this {
    const l = this._ls[event];
    if (l) for (let i = l.length - 1; i >= 0; i--) if (l[i] === fn) l.splice(i, 1);
    return this;
  }

  private _emit(event: string, a?: unknown, b?: unknown): void {
    const l = this._ls[event];
    if (l) {
      const c = l.slice();
      for (let i = 0; i < c.length; i++) this._call(c, i, a, b);
    }
  }

  // _call runs application code; an exception is rethrown outside the client
  // so that it shows in the console without breaking delivery.
  private _call(obj: any, name: string | number, a?: unknown, b?: unknown): void {
    if (!obj[name]) return;
    try {
      obj[name](a, b);
    } catch (e) {
      this._o.setTimeout(function () {
        throw e;
      }, 0);
    }
  }

  // _setState reports whether the state handlers left this run of the
  // client alone: false when one called disconnect(), maybe connect() after
  // it, whose connection is then the one to keep.
  private _setState(s: State): boolean {
    const g = this._gen;
    if (this.state !== s) {
      this.state = s;
      this._emit('state', s);
    }
    return g === this._gen;
  }

  // ---- public API ----

  /** connect starts connecting (and keeps reconnecting until disconnect or a terminal error). */
  connect(): this {
    if (this._want) return this;
    this._want = true;
    this._retried = this._fresh = false;
    this._n = 0;
    this._drops = 0;
    this._idx = this._remembered();
    this._listen('addEventListener');
    if (!this._setState('connecting')) return this;
    if (!this._token && this._o.getToken) this._refresh();
    else this._start();
    return this;
  }

  /** disconnect closes the connection and stops reconnecting; subscriptions and positions are kept. */
  disconnect(): this {
    this._stop();
    return this;
  }

  /**
   * subscribe starts delivery on a channel. handlers may be an object of
   * callbacks or just the message callback. One subscription per channel.
   */
  subscribe(channel: string, handlers?: SubscriptionHandlers | ((data: unknown, ctx: any) => void), options?: SubscribeOptions): Subscription {
    if (this._subs[channel]) throw new Error('WaterSpout: already subscribed to ' + channel);
    const h: SubscriptionHandlers = typeof handlers === 'function' ? { message: handlers } : handlers || {};
    const s = new Subscription(this, channel, h, options && options.token);
    const l = this.limits;
    const p = options && options.since;
    // A name or a since the server refuses, or a channel past its limit, would make a
    // poll or SSE request fail for every channel (the server names no
    // channel then): refuse it here, on every transport alike, and send
    // nothing.
    const e = !CHANNEL.test(channel)
      ? fail(400, 'invalid channel name')
      : p && !(typeof p.epoch === 'string' && EPOCH.test(p.epoch) && typeof p.offset === 'number' && p.offset >= 0 && p.offset < 9007199254740992 && p.offset % 1 === 0)
        ? fail(400, 'invalid since')
        : l && l.maxChannels && Object.keys(this._subs).length >= l.maxChannels
        ? fail(429, 'too many channels')
        : null;
    if (e) {
      const self = this;
      this._o.setTimeout(function () {
        self._call(h, 'error', e);
      }, 0);
      return s;
    }
    this._subs[channel] = s;
    if (p) this._pos[channel] = { epoch: p.epoch, offset: p.offset };
    this._changed(channel, true);
    return s;
  }

  /** subscription returns the subscription of a channel, if any. */
  subscription(channel: string): Subscription | undefined {
    return this._subs[channel];
  }

  /** position returns the last position seen on a channel. */
  position(channel: string): Position | undefined {
    const p = this._pos[channel];
    return p && { epoch: p.epoch, offset: p.offset };
  }

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
  publish(channel: string, data: unknown, cb?: Callback<PublishResult>): Promise<PublishResult> | undefined {
    const self = this;
    return promised(cb, function (done) {
      self._pub(channel, data, done);
    });
  }

  /** setToken replaces the connection token; on a live WebSocket it is sent at once (auth). */
  setToken(token: string): void {
    const self = this;
    this._token = token;
    this._command({ type: 'auth', token: token }, function (f) {
      if (f.type === 'error' && f.code) self._emit('error', fail(f.code, f.reason || 'auth failed'));
    });
  }

  // ---- internals: commands ----

  // _ask sends a command answered by a reply: its field key is the result,
  // or the whole reply without a key.
  private _ask(type: string, channel: string, cb: Callback<any> | undefined, key?: string): Promise<any> | undefined {
    const self = this;
    return promised(cb, function (done) {
      const sent = self._command({ type: type, channel: channel }, function (f) {
        if (f.type === 'reply') done(null, key ? (f as any)[key] : f);
        else done(fail(f.code || 0, f.reason || 'disconnected'));
      });
      if (!sent) done(fail(503, 'not on this transport'));
    });
  }

  // _command sends a command on the current bidirectional transport; it
  // returns false when there is none.
  private _command(cmd: any, cb: (f: Frame) => void): boolean {
    const a = this._cur;
    if (!a || !a._open || !a._t!.send) return false;
    cmd.id = ++this._id;
    this._pending[cmd.id] = cb;
    a._t!.send([cmd]);
    return true;
  }

  private _subCmd(channel: string): object {
    const self = this;
    const s = this._subs[channel];
    const id = (s._id = ++this._id);
    const c: any = { type: 'subscribe', id: id, channel: channel };
    if (this._pos[channel]) c.since = this._pos[channel];
    if (s._tok) c.token = s._tok;
    this._pending[id] = function (f) {
      // 409 (already subscribed) is harmless; 0 is our own "disconnected".
      if (f.type === 'error' && f.code && f.code !== 409 && self._subs[channel] === s) {
        self._drop(channel);
        self._call(s._h, 'error', fail(f.code, f.reason || 'subscribe failed'));
      }
    };
    return c;
  }

  private _pub(channel: string, data: unknown, cb: Callback<PublishResult>): void {
    const a = this._cur;
    if (!a || !a._open) {
      // A page offline for hours must not pile up publishes (nor send them
      // all in one burst when it is back): past 100, fail at once.
      if (!this._want) cb(fail(503, 'not connected'));
      else if (this._queue.length < 100) this._queue.push([channel, data, cb]);
      else cb(fail(503, 'publish queue full'));
      return;
    }
    const sent = this._command({ type: 'publish', channel: channel, data: data }, function (f) {
      if (f.type === 'reply') cb(null, { channel: f.channel!, offset: f.offset!, epoch: f.epoch! });
      else cb(fail(f.code || 0, f.reason || 'disconnected'));
    });
    if (sent) return;
    const body: any = { channel: channel, data: data };
    if (this._token) body.token = this._token;
    try {
      xhr(this._o, 'POST', this.url + '/connect/publish', JSON.stringify(body), 'application/json', function (status, r) {
        if (status === 200 && r) return cb(null, r);
        const e = (r && r.error) || {};
        cb(fail(e.code || status, e.reason || 'publish failed'));
      });
    } catch (e) {
      cb(e as any);
    }
  }

  private _failPending(): void {
    const p = this._pending;
    this._pending = dict();
    for (const id in p) this._call(p, id, { type: 'error', code: 0, reason: 'disconnected' });
  }

  // ---- internals: channel set ----

  // _chans is the channel set of a poll or SSE request: every subscription
  // but those waiting for WebSocket.
  private _chans(): string[] {
    const r: string[] = [];
    for (const ch in this._subs) if (!this._subs[ch]._off) r.push(ch);
    return r.sort();
  }

  // _wait is the index of WebSocket when a subscription waits for it, else -1.
  private _wait(): number {
    for (const ch in this._subs) if (this._subs[ch]._off) return this._order.indexOf('websocket');
    return -1;
  }

  // _fits reports whether the poll or SSE attempt a carries the channel set
  // as it is now: the same channels, none of them subscribed again since a
  // was opened (that subscription needs its own subscribed frame and since).
  private _fits(a: Attempt): boolean {
    for (const ch in this._subs) if (this._subs[ch]._w === a) return false;
    return a._ch === this._chans().join(' ');
  }

  private _drop(channel: string): void {
    delete this._subs[channel];
    delete this._pos[channel];
  }

  private _unsub(s: Subscription): void {
    if (this._subs[s.channel] !== s) return;
    this._drop(s.channel);
    this._changed(s.channel, false);
  }

  private _changed(channel: string, added: boolean): void {
    const a = this._cur;
    const p = this._probe;
    if (p && !(p._t && p._t.send)) { // _t is null while a missing transport's failure is due
      this._kill(p);
      this._schedProbe();
    }
    if (added && a && !(a._t && a._t.send)) this._subs[channel]._w = a;
    if (!a || !a._open) return; // the hello handler catches up
    if (!a._t!.send) return this._restartSoon();
    if (added) a._t!.send([this._subCmd(channel)]);
    else this._command({ type: 'unsubscribe', channel: channel }, function () {});
  }

  // _restartSoon reopens a URL-addressed transport (SSE, poll) with the new
  // channel set: the new one opens first, the old one closes at its hello.
  private _restartSoon(): void {
    const self = this;
    if (this._rtimer) return;
    this._rtimer = this._o.setTimeout(function () {
      self._rtimer = null;
      const a = self._cur;
      if (!a || !a._open || a._t!.send || self._fits(a)) return;
      self._kill(self._probe);
      self._probe = self._make(a._i);
      self._probe._r = true;
    }, 0);
  }

  // ---- internals: connection lifecycle ----

  private _make(i: number): Attempt {
    const self = this;
    const o = this._o;
    const channels = this._chans();
    const w = this._wait();
    // The server refuses a request without channels (400 no channel): when
    // only subscriptions waiting for WebSocket are left, WebSocket it is.
    if (!channels.length && w >= 0) i = w;
    const pos: Positions = dict();
    for (const ch in this._pos) pos[ch] = this._pos[ch];
    const a: Attempt = { _i: i, _t: null, _open: false, _dead: false, _at: 0, _timer: null, _live: 0, _ch: channels.join(' ') };
    a._timer = o.setTimeout(function () {
      self._closed(a, 0, 'no hello');
    }, o.helloTimeout);
    try {
      a._t = factories[this._order[i]]({
        _url: this.url,
        _ch: channels,
        _pos: pos,
        _token: this._token,
        _o: o,
        _cursor: function () {
          const c: Positions = dict();
          let any = false;
          for (let k = 0; k < channels.length; k++) {
            const p = self._pos[channels[k]];
            if (p) {
              c[channels[k]] = p;
              any = true;
            }
          }
          return any ? encodeCursor(c) : '';
        },
        _frame: function (f) {
          self._frame(a, f);
        },
        _end: function (code, reason) {
          self._closed(a, code, reason);
        },
      });
    } catch (e) {
      // Not available here (no WebSocket, no EventSource...): fail on the next tick.
      o.clearTimeout(a._timer);
      a._timer = o.setTimeout(function () {
        self._closed(a, 0, 'unsupported');
      }, 0);
    }
    return a;
  }

  private _start(): void {
    this._timer = null;
    if (this._want && this._setState('connecting')) this._cur = this._make(this._idx);
  }

  private _kill(a: Attempt | null): void {
    if (!a || a._dead) return;
    a._dead = true;
    this._o.clearTimeout(a._timer);
    if (a === this._probe) this._probe = null;
    else if (a._t && a._t.send) this._failPending();
    if (a === this._cur) this._cur = null;
    if (a._t) a._t.close();
  }

  // _down ends the current connection and everything that hangs off it.
  private _down(): void {
    const o = this._o;
    this._kill(this._probe);
    this._kill(this._cur);
    o.clearTimeout(this._ptimer);
    o.clearTimeout(this._rtimer);
    this._rtimer = null;
    this.transport = null;
  }

  private _stop(): void {
    this._want = false;
    this._gen++;
    this._down();
    this._o.clearTimeout(this._timer);
    this._timer = null;
    this._listen('removeEventListener');
    const q = this._queue;
    this._queue = [];
    for (let i = 0; i < q.length; i++) this._call(q[i], 2, fail(503, 'disconnected'));
    this._setState('disconnected');
  }

  private _retry(ms: number): void {
    const self = this;
    // An application handler may have called disconnect() meanwhile.
    if (!this._want || !this._setState('connecting')) return;
    this._o.clearTimeout(this._timer);
    this._timer = this._o.setTimeout(function () {
      self._start();
    }, ms);
  }

  private _delay(): number {
    const o = this._o;
    return backoff(this._n++, o.minDelay, o.maxDelay, o.random);
  }

  // _failover moves to the next transport at once; after the last one, it
  // backs off and starts again from the first, and reports the refusal a
  // transport could read (a browser cannot read a refused WebSocket
  // handshake, but poll and JSONP answers say why), so that a page refused
  // for its origin or its token does not stay "connecting" in silence.
  private _failover(): void {
    this._drops = 0;
    // The other transports would be WebSocket again (see _make): back off.
    if (this._idx + 1 < this._order.length && (this._chans().length || this._wait() < 0)) {
      this._idx++;
      this._retry(0);
    } else {
      this._idx = 0;
      this._retry(this._delay());
      const w = this._why;
      this._why = null;
      if (w) this._emit('error', w);
    }
  }

  // _refresh gets a fresh token, then connects: after a backoff when wait
  // is set.
  private _refresh(wait?: boolean): void {
    const self = this;
    const gen = this._gen;
    callToken(this._o.getToken!, function (err, t) {
      if (gen !== self._gen || !self._want) return;
      if (err || !t) {
        self._emit('error', fail(401, 'getToken failed'));
        if (gen === self._gen) self._retry(self._delay());
        return;
      }
      self._token = t;
      self._fresh = true;
      if (wait) self._retry(self._delay());
      else self._start();
    });
  }

  private _listen(m: 'addEventListener' | 'removeEventListener'): void {
    const o = this._o;
    if (o.events) o.events[m]('online', this._wake);
    if (o.document) o.document[m]('visibilitychange', this._wake);
  }

  private _remembered(): number {
    const o = this._o;
    try {
      const v = o.rememberFor && o.storage && JSON.parse(o.storage.getItem('waterspout:' + this.url) || 'null');
      if (v && v.x > o.now()) {
        for (let i = 0; i < this._order.length; i++) if (this._order[i] === v.t) return i;
      }
    } catch (e) {
      // unreadable: start from the first transport
    }
    return 0;
  }

  private _remember(name: TransportName): void {
    const o = this._o;
    try {
      if (o.rememberFor && o.storage) o.storage.setItem('waterspout:' + this.url, JSON.stringify({ t: name, x: o.now() + o.rememberFor }));
    } catch (e) {
      // quota or privacy mode: nothing to remember
    }
  }

  private _schedProbe(): void {
    const self = this;
    const o = this._o;
    o.clearTimeout(this._ptimer);
    const a = this._cur;
    // A subscription waiting for WebSocket has it probed whatever
    // upgradeInterval and the transport order say.
    const w = a ? this._wait() : -1;
    const ws = w >= 0 && w !== a!._i;
    if (!ws && (!o.upgradeInterval || !a || !a._i)) return;
    this._ptimer = o.setTimeout(function () {
      const c = self._cur;
      if (!c || !c._open) return;
      if (self._probe) return self._schedProbe();
      if (self._next >= c._i) self._next = 0;
      self._probe = self._make(ws ? w : self._next);
    }, (o.upgradeInterval || DEFAULTS.upgradeInterval) * (0.75 + 0.5 * o.random()));
  }

  // _closed: an attempt ended without a disconnect frame (network, hello
  // timeout, heartbeat timeout), or with a WebSocket close code.
  private _closed(a: Attempt, code: number, reason: string): void {
    if (a._dead) return;
    const o = this._o;
    if (a === this._probe) {
      this._kill(a);
      if (a._r) {
        // A restart refused for one channel (a subscribe while on poll)
        // ends that subscription alone: the live request goes on.
        if (this._refused(code, reason)) return this._restartSoon();
        const c = this._cur;
        if (c) this._closed(c, 1006, 'restart failed');
        return;
      }
      this._next++;
      return this._schedProbe();
    }
    if (a !== this._cur) return this._kill(a);
    // Long-poll and JSONP read a refused token as 401 with the reason that
    // WebSocket gets as a disconnect code: act on it the same way.
    if (code === 401) code = reason === 'token expired' ? Codes.TokenExpired : reason === 'invalid token' ? Codes.InvalidToken : code;
    if (code >= 3000 && code < 5000) return this._lost(a, code, reason);
    if (code >= 400 && code < 600) this._why = fail(code, reason);
    this._down();
    this._idx = a._i;
    const g = this._gen;
    if (this._refused(code, reason)) {
      this._why = null;
      // The subscription's error handler may have called disconnect() and connect().
      if (g === this._gen) this._retry(0);
      return;
    }
    if (!a._open) return this._failover();
    this._stable(a);
    if (++this._drops >= o.maxFailures) return this._failover();
    this._retry(this._delay());
  }

  // _refused acts on a poll or JSONP answer that refuses the whole request
  // for one channel ("orders:7: permission denied"), and reports whether it
  // did: it ends that subscription, as WebSocket's subscribe error does, so
  // that the caller reopens at once without it. A subscription with its own
  // token is not ended: only WebSocket carries that token, so a refusal on
  // another transport says nothing about it. It is left out of poll and SSE
  // requests and waits for WebSocket (the upgrade probe brings it back,
  // whose hello subscribes it with its token), unless the client has no
  // WebSocket to wait for; the application hears it once, on the `error`
  // event. A request without channels is refused (400 no channel): when
  // only subscriptions waiting for WebSocket are left, every connection is
  // WebSocket's (see _make).
  private _refused(code: number, reason: string): boolean {
    const i = (reason = '' + reason).indexOf(': ');
    const s = code >= 400 && code < 500 && i > 0 ? this._subs[reason.slice(0, i)] : null;
    const w = this._order.indexOf('websocket');
    if (!s) return false;
    if (s._tok && w >= 0) {
      s._off = true;
      this._emit('error', fail(code, reason + ' (needs websocket: waiting for it)'));
    } else {
      this._drop(s.channel);
      this._call(s._h, 'error', fail(code, reason));
    }
    return true;
  }

  // _stable resets the failure count and the backoff when a's connection
  // lived long enough: the server ending it (a deploy, a slow consumer) says
  // nothing about the next one.
  private _stable(a: Attempt): void {
    if (a._open && this._o.now() - a._at >= this._o.stableAfter) this._n = this._drops = 0;
  }

  // _lost: the server ended the connection with a disconnect code.
  private _lost(a: Attempt, code: number, reason: string, reconnect?: boolean): void {
    if (a !== this._cur) return this._closed(a, 0, reason);
    const o = this._o;
    this._down();
    this._idx = a._i;
    this._stable(a);
    const again = canReconnect(code, reconnect);
    const g = this._gen;
    this._emit('disconnect', { code: code, reason: reason, reconnect: again });
    // The handler called disconnect(), maybe connect() after it: that
    // connection is the one to keep.
    if (g !== this._gen) return;
    if (o.getToken && (code === Codes.TokenExpired || (code === Codes.InvalidToken && !this._retried))) {
      if (code === Codes.InvalidToken) this._retried = true;
      if (!this._setState('connecting')) return;
      // A fresh token refused as expired again (an issuer whose clock lags
      // the server's, a cached token) must not make a tight loop.
      return this._refresh(code === Codes.TokenExpired && this._fresh);
    }
    if (!again) {
      // Stopped first, so that an error handler may connect() again.
      this._stop();
      return this._emit('error', fail(code, reason));
    }
    if (code === Codes.Shutdown) {
      // "Reconnect now", spread over two seconds so a deploy is no stampede.
      this._n = 0;
      return this._retry(o.random() * 2000);
    }
    if (code === Codes.RateLimited) this._n = Math.max(this._n, 4);
    this._retry(this._delay());
  }

  // ---- internals: frames ----

  private _frame(a: Attempt, f: Frame): void {
    if (a._dead) return;
    const self = this;
    const o = this._o;
    if (a._live) {
      o.clearTimeout(a._timer);
      a._timer = o.setTimeout(function () {
        self._closed(a, 1006, 'heartbeat timeout');
      }, a._live);
    }
    const t = f.type;
    if (t === 'hello') this._hello(a, f);
    else if (t === 'message') this._msg(a, f);
    else if (t === 'subscribed') this._subd(a, f);
    else if (t === 'disconnect') this._lost(a, f.code || 0, f.reason || '', f.reconnect);
    else if (t === 'join' || t === 'leave' || t === 'unsubscribed') {
      // The frame is the handler's argument: {channel, client, user} or
      // {channel, code, reason}.
      const js = this._subs[f.channel!];
      if (js) {
        if (t === 'unsubscribed') this._unsub(js);
        this._call(js._h, t, f);
      }
    }
    else if (t === 'reply' || t === 'error') {
      const id = f.id || 0;
      const s = f.channel ? this._subs[f.channel] : null;
      const p = this._pending;
      if (p[id]) {
        const cb = { f: p[id] };
        delete p[id];
        this._call(cb, 'f', f);
      } else if (t === 'error') {
        const e = fail(f.code || 0, f.reason || 'error');
        if (s) {
          this._drop(f.channel!);
          this._call(s._h, 'error', e);
        } else this._emit('error', e);
      }
    }
  }

  private _hello(a: Attempt, f: Frame): void {
    if (a._open) return;
    const self = this;
    const o = this._o;
    const name = this._order[a._i];
    const fresh = this.state !== 'connected' || this.transport !== name;
    o.clearTimeout(a._timer);
    a._open = true;
    a._at = o.now();
    this._why = null;
    this._retried = this._fresh = false;
    if (f.ping && (name === 'websocket' || name === 'sse')) {
      a._live = (2 * f.ping + 5) * 1000;
      a._timer = o.setTimeout(function () {
        self._closed(a, 1006, 'heartbeat timeout');
      }, a._live);
    }
    if (a === this._probe) {
      // Upgrade (or channel-set restart): the new transport carries on from
      // the positions it was opened with; the old one closes now. Anything
      // both deliver is dropped by offset.
      const old = this._cur;
      this._probe = null;
      this._cur = a;
      this._kill(old);
    }
    this._idx = a._i;
    this._next = 0;
    this.transport = name;
    this.session = f.session || null;
    this.presenceId = f.client || this.session;
    this.limits = f.limits || null;
    this._remember(name);
    const g = this._gen;
    if (this._setState('connected') && fresh) this._emit('transport', name, f);
    if (g !== this._gen) return; // a handler called disconnect()
    const t = a._t!;
    if (t.send) {
      const cmds: object[] = [];
      for (const ch in this._subs) cmds.push(this._subCmd(ch));
      if (cmds.length) t.send(cmds, f.limits && f.limits.maxMessageBytes);
    } else if (!this._fits(a)) this._restartSoon();
    const q = this._queue;
    this._queue = [];
    for (let i = 0; i < q.length; i++) this._pub(q[i][0], q[i][1], q[i][2]);
    this._schedProbe();
  }

  private _recovery(s: Subscription, r: Recovery): void {
    this._call(s._h, 'recovered', r);
    this._emit('recovery', r);
  }

  private _msg(a: Attempt, f: Frame): void {
    const ch = f.channel!;
    const s = this._subs[ch];
    const off = f.offset!;
    const ep = f.epoch!;
    // Until its subscribe is answered, a message on the WebSocket belongs to
    // an earlier subscription to the channel (unsubscribed meanwhile); so
    // does one from a poll or SSE request opened before the subscription.
    if (!s || typeof off !== 'number' || this._pending[s._id!] || s._w === a) return;
    const p = this._pos[ch];
    if (p && p.epoch === ep) {
      if (off <= p.offset) return; // seen already
      if (off > p.offset + 1) this._recovery(s, { channel: ch, recovered: false, epoch: ep, offset: off, reason: 'gap', from: p.offset + 1, to: off - 1 });
    } else if (p) this._recovery(s, { channel: ch, recovered: false, epoch: ep, offset: off, reason: 'epoch' });
    this._pos[ch] = { epoch: ep, offset: off };
    this._call(s._h, 'message', f.data, f);
  }

  private _subd(a: Attempt, f: Frame): void {
    if (f.id) delete this._pending[f.id];
    const ch = f.channel!;
    const s = this._subs[ch];
    const ep = f.epoch!;
    const off = f.offset || 0;
    // A `subscribed` with another id, or from a poll or SSE request opened
    // before the subscription, answers an earlier subscription to the channel.
    if (!s || !ep || (f.id && f.id !== s._id) || s._w === a) return;
    const p = this._pos[ch];
    // recovered:true continues from our own position (the replay follows), so
    // only a new epoch or a position the server could not recover moves it.
    if (!p || p.epoch !== ep || (f.recovered === false && off > p.offset)) this._pos[ch] = { epoch: ep, offset: off };
    const ctx: SubscribedContext = { channel: ch, epoch: ep, offset: off };
    if (typeof f.recovered === 'boolean') ctx.recovered = f.recovered;
    this._call(s._h, 'subscribed', ctx);
    if (typeof f.recovered === 'boolean') {
      const r: Recovery = { channel: ch, recovered: f.recovered, epoch: ep, offset: off };
      if (!f.recovered) r.reason = 'history';
      this._recovery(s, r);
    }
  }
}
