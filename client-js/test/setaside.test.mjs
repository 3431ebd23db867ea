// Subscriptions with their own token set aside for WebSocket (a long-poll
// refused their channel): the application is told once, WebSocket is tried
// however the client is configured, and no request ever names no channel
// (the server refuses it: 400 no channel).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../.build/index.js';
import { setup, collect, hello, memStorage, query } from './fakes.mjs';

const subd = (ch, offset = 0) => ({ type: 'subscribed', channel: ch, epoch: 'E', offset });
const onPoll = () => memStorage({ 'waterspout:https://push.example.com': JSON.stringify({ t: 'poll', x: 2_000_000_000_000 }) });
const refused = { error: { code: 403, reason: 'orders:7: permission denied' } };

// run answers every request for ms of fake time: WebSockets fail, SSE
// fails, polls and JSONP get answer; it returns what was asked, in order.
function run(clock, { WS, ES, XHR, jsonp }, ms, answer = { messages: [], cursor: 'C' }) {
  const asked = [];
  for (let t = 0; t < ms; t += 100) {
    for (const w of WS.all) if (!w.closed && !w.done) { w.done = true; asked.push('websocket'); w.drop(1006); }
    for (const e of ES.all) if (!e.closed && !e.done) { e.done = true; asked.push('sse ' + query(e.url).channels.join(',')); e.fail(); }
    for (const x of XHR.open()) { asked.push('poll ' + query(x.url).channels.join(',')); x.respond(200, answer); }
    for (const j of jsonp) if (!j.cancelled && !j.done2) { j.done2 = true; asked.push('jsonp ' + query(j.url).channels.join(',')); j.done(answer); }
    clock.advance(100);
  }
  return asked;
}

test('set aside: the application hears it once on the error event, the subscription goes on', () => {
  const f = setup(Client, { storage: onPoll() });
  const { c, clock, XHR, seen } = f;
  const orders = collect(c, 'orders:7', { token: 'channel-token' });
  collect(c, 'news');
  c.connect();
  XHR.last().respond(403, refused);
  clock.tick();
  XHR.last().respond(200, { messages: [hello('poll'), subd('news')], cursor: 'C0' });
  run(clock, f, 600000); // WebSocket blocked for good, ten minutes of upgrade probes
  assert.deepEqual(seen.errors.map((e) => [e.code, e.reason]), [[403, 'orders:7: permission denied (needs websocket: waiting for it)']]);
  assert.equal(orders.errors.length, 0);
  assert.equal(c.subscription('orders:7'), orders.sub);
  assert.equal(c.state, 'connected');
});

test('set aside and alone: only WebSocket is tried, with the backoff, never a request without channel', () => {
  const f = setup(Client, { storage: onPoll() });
  const { c, clock, XHR, seen } = f;
  const orders = collect(c, 'orders:7', { token: 'channel-token' });
  c.connect();
  XHR.last().respond(403, refused);
  const asked = run(clock, f, 120000);
  assert.deepEqual(asked.filter((a) => a !== 'websocket'), []);
  // With the backoff (0.5 s growing to 20 s, random() = 0.5): 15 in two
  // minutes, not one every 100 ms.
  assert.ok(asked.length >= 5 && asked.length <= 20, String(asked.length));
  assert.equal(c.state, 'connecting');
  assert.equal(seen.errors.length, 1);
  assert.equal(orders.errors.length, 0);
  // WebSocket back: the subscription is subscribed with its token.
  const n = f.WS.all.length;
  for (let t = 0; t < 30000 && f.WS.all.length === n; t += 100) clock.advance(100);
  const ws = f.WS.all.at(-1);
  assert.equal(ws.done, undefined, 'a new WebSocket');
  ws.recv(hello());
  assert.deepEqual(ws.sent.filter((m) => m.type === 'subscribe').map((m) => [m.channel, m.token]), [['orders:7', 'channel-token']]);
});

for (const [name, opts] of [
  ['upgradeInterval 0', { upgradeInterval: 0, storage: onPoll() }],
  ["transports ['poll', 'websocket']", { transports: ['poll', 'websocket'] }],
]) {
  test('set aside with ' + name + ': WebSocket is still tried, and subscribes it', () => {
    const f = setup(Client, opts);
    const { c, clock, WS, XHR } = f;
    collect(c, 'orders:7', { token: 'channel-token' });
    collect(c, 'news');
    c.connect();
    XHR.last().respond(403, refused);
    clock.tick();
    XHR.last().respond(200, { messages: [hello('poll'), subd('news')], cursor: 'C0' });
    for (let t = 0; t < 90000 && !WS.all.length; t += 5000) {
      for (const x of XHR.open()) x.respond(200, { messages: [], cursor: 'C' });
      clock.advance(5000);
    }
    assert.equal(WS.all.length, 1, 'a WebSocket probe');
    WS.all[0].recv(hello());
    assert.equal(c.transport, 'websocket');
    assert.deepEqual(WS.all[0].sent.filter((m) => m.type === 'subscribe').map((m) => m.channel).sort(), ['news', 'orders:7']);
  });
}

// pollAfterTokenRefused starts on long-poll with a token channel, orders:7,
// and news: the first poll is refused for orders:7, which is set aside, and
// the client reopens the poll with news alone.
function pollAfterTokenRefused() {
  const env = setup(Client, { transports: ['websocket', 'poll'], storage: onPoll() });
  collect(env.c, 'orders:7', { token: 'channel-token' });
  const news = collect(env.c, 'news');
  env.c.connect();
  env.XHR.last().respond(403, refused);
  env.clock.tick();
  return { ...env, news };
}

test('set aside: unsubscribing the last other channel goes to WebSocket, not to a poll without channel', () => {
  const { c, clock, WS, XHR, news } = pollAfterTokenRefused();
  XHR.last().respond(200, { messages: [hello('poll'), subd('news')], cursor: 'C0' });
  const polls = XHR.all.length;
  news.sub.unsubscribe();
  clock.tick();
  assert.equal(XHR.all.length, polls, 'no new poll');
  assert.equal(WS.all.length, 1);
  WS.all[0].recv(hello());
  assert.equal(c.transport, 'websocket');
  assert.deepEqual(WS.all[0].sent.filter((m) => m.type === 'subscribe').map((m) => [m.channel, m.token]), [['orders:7', 'channel-token']]);
});

test('set aside: a plain channel refused after it leaves nothing for long-poll, so WebSocket is next', () => {
  const { c, clock, WS, XHR, news } = pollAfterTokenRefused();
  assert.deepEqual(query(XHR.last().url).channels, ['news']);
  XHR.last().respond(403, { error: { code: 403, reason: 'news: permission denied' } });
  clock.tick();
  assert.equal(news.errors.length, 1);
  assert.equal(XHR.all.length, 2, 'no third poll');
  assert.equal(WS.all.length, 1);
});

test('subscribe: a since the server would refuse fails on its error handler, and no request names it', () => {
  const { c, clock, XHR } = setup(Client, { transports: ['poll'] });
  collect(c, 'news');
  const bad = [
    { epoch: 'saved epoch!', offset: 3 },
    { epoch: '', offset: 3 },
    { epoch: 'e'.repeat(65), offset: 3 },
    { epoch: 'E', offset: 2 ** 53 },
    { epoch: 'E', offset: -1 },
    { epoch: 'E', offset: 1.5 },
    { offset: 3 }, // no epoch: String(undefined) would match the epoch's pattern
    { epoch: 'E', offset: '3' },
  ].map((since, i) => collect(c, 'orders:' + i, { since }));
  const good = collect(c, 'orders:ok', { since: { epoch: 'e'.repeat(64), offset: 2 ** 53 - 1 } });
  c.connect();
  clock.tick();
  for (const b of bad) {
    assert.deepEqual(b.errors.map((e) => [e.code, e.reason]), [[400, 'invalid since']]);
    assert.equal(c.subscription(b.sub.channel), undefined);
  }
  assert.equal(good.errors.length, 0);
  assert.deepEqual(query(XHR.last().url).channels, ['news', 'orders:ok']);
});

test("set aside by a refused restart on a live poll, with transports ['poll', 'websocket']: WebSocket is still tried", () => {
  const { c, clock, WS, XHR, seen } = setup(Client, { transports: ['poll', 'websocket'] });
  collect(c, 'news');
  c.connect();
  XHR.last().respond(200, { messages: [hello('poll'), subd('news')], cursor: 'C0' });
  collect(c, 'orders:7', { token: 'channel-token' });
  clock.tick();
  XHR.last().respond(401, { error: { code: 401, reason: 'orders:7: token required' } });
  clock.tick();
  assert.equal(seen.errors.length, 1);
  for (let t = 0; t < 90000 && !WS.all.length; t += 5000) {
    for (const x of XHR.open()) x.respond(200, { messages: [], cursor: 'C' });
    clock.advance(5000);
  }
  assert.equal(WS.all.length, 1, 'a WebSocket probe');
  WS.all[0].recv(hello());
  assert.deepEqual(WS.all[0].sent.filter((m) => m.type === 'subscribe').map((m) => m.channel).sort(), ['news', 'orders:7']);
});
