// Fakes for running the client under Node: a manual clock, WebSocket,
// EventSource, XMLHttpRequest and JSONP injector, and an in-memory storage.

export class Clock {
  constructor() {
    this.t = 1_000_000;
    this.q = [];
    this.seq = 0;
    this.setTimeout = (fn, ms) => {
      const id = ++this.seq;
      this.q.push({ id, at: this.t + Math.max(0, ms || 0), fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.q = this.q.filter((x) => x.id !== id);
    };
    this.now = () => this.t;
  }
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      this.q.sort((a, b) => a.at - b.at || a.id - b.id);
      const n = this.q[0];
      if (!n || n.at > end) break;
      this.q.shift();
      this.t = n.at;
      n.fn();
    }
    this.t = end;
  }
  tick() {
    this.advance(0);
  }
}

const enc = (frames) => frames.map((f) => (typeof f === 'string' ? f : JSON.stringify(f))).join('\n');

export function wsClass() {
  const all = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = false;
      all.push(this);
    }
    send(s) {
      for (const line of s.split('\n')) this.sent.push(JSON.parse(line));
    }
    close() {
      this.closed = true;
    }
    recv(...frames) {
      this.onmessage({ data: enc(frames) });
    }
    drop(code = 1006, reason = '') {
      this.closed = true;
      this.onclose({ code, reason });
    }
  }
  FakeWebSocket.all = all;
  return FakeWebSocket;
}

export function esClass() {
  const all = [];
  class FakeEventSource {
    constructor(url) {
      this.url = url;
      this.closed = false;
      all.push(this);
    }
    close() {
      this.closed = true;
    }
    emit(...frames) {
      for (const f of frames) this.onmessage({ data: JSON.stringify(f) });
    }
    fail() {
      this.onerror({});
    }
  }
  FakeEventSource.all = all;
  return FakeEventSource;
}

export function xhrClass() {
  const all = [];
  class FakeXHR {
    constructor() {
      this.headers = {};
      this.readyState = 0;
      this.aborted = false;
    }
    open(method, url) {
      this.method = method;
      this.url = url;
    }
    setRequestHeader(k, v) {
      this.headers[k] = v;
    }
    send(body) {
      this.body = body;
      all.push(this);
    }
    abort() {
      this.aborted = true;
    }
    respond(status, body) {
      this.readyState = 4;
      this.status = status;
      this.responseText = typeof body === 'string' ? body : JSON.stringify(body);
      this.onreadystatechange();
    }
  }
  FakeXHR.all = all;
  FakeXHR.open = () => all.filter((x) => !x.aborted && x.readyState !== 4);
  FakeXHR.last = () => all[all.length - 1];
  return FakeXHR;
}

export function memStorage(init = {}) {
  const m = { ...init };
  return {
    m,
    getItem: (k) => (k in m ? m[k] : null),
    setItem: (k, v) => {
      m[k] = String(v);
    },
  };
}

export function query(url) {
  const u = new URL(url, 'http://x');
  return { path: u.pathname, channels: u.searchParams.getAll('channel'), cursor: u.searchParams.get('cursor'), token: u.searchParams.get('token'), callback: u.searchParams.get('callback') };
}

export const hello = (transport = 'ws', ping = 25) => ({ type: 'hello', session: 's1', transport, ping, limits: { maxMessageBytes: 65536, maxChannels: 128, maxQueueBytes: 2097152 } });
export const msg = (channel, offset, epoch = 'E', data = offset) => ({ type: 'message', channel, offset, epoch, data });

/** setup builds a Client wired to fakes and records what the application sees. */
export function setup(Client, opts = {}) {
  const clock = new Clock();
  const WS = wsClass();
  const ES = esClass();
  const XHR = xhrClass();
  const jsonp = [];
  const storage = memStorage();
  const c = new Client('https://push.example.com/', {
    WebSocket: WS,
    EventSource: ES,
    XMLHttpRequest: XHR,
    jsonp: (url, done) => {
      const r = { url, done, cancelled: false };
      jsonp.push(r);
      return () => {
        r.cancelled = true;
      };
    },
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random: () => 0.5,
    storage,
    events: null,
    document: null,
    ...opts,
  });
  const seen = { states: [], transports: [], errors: [], recoveries: [], disconnects: [] };
  c.on('state', (s) => seen.states.push(s));
  c.on('transport', (t) => seen.transports.push(t));
  c.on('error', (e) => seen.errors.push(e));
  c.on('recovery', (r) => seen.recoveries.push(r));
  c.on('disconnect', (d) => seen.disconnects.push(d));
  return { c, clock, WS, ES, XHR, jsonp, storage, seen };
}

/** collect subscribes to a channel and records its messages (as data) and callbacks. */
export function collect(c, channel, options) {
  const got = { data: [], subscribed: [], recovered: [], errors: [] };
  got.sub = c.subscribe(
    channel,
    {
      message: (d) => got.data.push(d),
      subscribed: (ctx) => got.subscribed.push(ctx),
      recovered: (r) => got.recovered.push(r),
      error: (e) => got.errors.push(e),
    },
    options,
  );
  return got;
}
