import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, decodeCursor } from '../.build/index.js';
import { setup, collect, hello, msg, query } from './fakes.mjs';

function connectedWS(opts) {
  const env = setup(Client, opts);
  const got = collect(env.c, 'news');
  env.c.connect();
  env.WS.all[0].recv(hello(), { type: 'subscribed', id: 1, channel: 'news', epoch: 'E', offset: 0 });
  return { ...env, got, ws: env.WS.all[0] };
}

test('resume: reconnect subscribes with the position; replayed duplicates are dropped', () => {
  const { clock, WS, got, ws } = connectedWS();
  ws.recv(msg('news', 1), msg('news', 2), msg('news', 3));
  ws.drop(1006);
  clock.advance(2000);
  const ws2 = WS.all[1];
  ws2.recv(hello());
  assert.deepEqual(ws2.sent, [{ type: 'subscribe', id: 2, channel: 'news', since: { epoch: 'E', offset: 3 } }]);
  ws2.recv({ type: 'subscribed', id: 2, channel: 'news', epoch: 'E', offset: 3, recovered: true }, msg('news', 2), msg('news', 3), msg('news', 4));
  ws2.recv(msg('news', 4), msg('news', 5));
  assert.deepEqual(got.data, [1, 2, 3, 4, 5]);
  assert.deepEqual(got.recovered, [{ channel: 'news', recovered: true, epoch: 'E', offset: 3 }]);
});

test('resume: subscribed with recovered:false is surfaced and the position moves on', () => {
  const { clock, WS, got, ws, seen } = connectedWS();
  ws.recv(msg('news', 1));
  ws.drop(1006);
  clock.advance(2000);
  const ws2 = WS.all[1];
  ws2.recv(hello(), { type: 'subscribed', id: 2, channel: 'news', epoch: 'E', offset: 90, recovered: false }, msg('news', 91));
  const r = { channel: 'news', recovered: false, epoch: 'E', offset: 90, reason: 'history' };
  assert.deepEqual(got.recovered, [r]);
  assert.deepEqual(seen.recoveries, [r]);
  assert.deepEqual(got.subscribed.at(-1), { channel: 'news', epoch: 'E', offset: 90, recovered: false });
  assert.deepEqual(got.data, [1, 91]);
});

test('resume: a gap in offsets and a new epoch are reported, never silently skipped', () => {
  const { got, ws, seen } = connectedWS();
  ws.recv(msg('news', 1), msg('news', 4));
  assert.deepEqual(got.recovered, [{ channel: 'news', recovered: false, epoch: 'E', offset: 4, reason: 'gap', from: 2, to: 3 }]);
  ws.recv(msg('news', 1, 'F'));
  assert.deepEqual(got.recovered[1], { channel: 'news', recovered: false, epoch: 'F', offset: 1, reason: 'epoch' });
  assert.equal(seen.recoveries.length, 2);
  assert.deepEqual(got.data, [1, 4, 1]);
});

test('resume: since option starts from a saved position', () => {
  const { c, WS } = setup(Client);
  collect(c, 'news', { since: { epoch: 'E', offset: 41 }, token: 'chan-token' });
  c.connect();
  WS.all[0].recv(hello());
  assert.deepEqual(WS.all[0].sent[0], { type: 'subscribe', id: 1, channel: 'news', since: { epoch: 'E', offset: 41 }, token: 'chan-token' });
});

test('heartbeat: silence longer than 2*ping+5 s is a dead connection', () => {
  const { clock, WS, ws } = connectedWS();
  clock.advance(50000);
  ws.recv({ type: 'ping' });
  clock.advance(54999);
  assert.equal(ws.closed, false);
  clock.advance(1);
  assert.equal(ws.closed, true);
  clock.advance(20000);
  assert.equal(WS.all.length, 2);
});

test('poll: first request without cursor; with positions, the handshake subscribed frames are dropped and the next poll carries our cursor', () => {
  const { c, clock, XHR } = setup(Client, { transports: ['poll'] });
  const news = collect(c, 'news', { since: { epoch: 'E', offset: 3 } });
  const fresh = collect(c, 'chat');
  c.connect();
  const q1 = query(XHR.all[0].url);
  assert.deepEqual(q1.channels, ['chat', 'news']);
  assert.equal(q1.cursor, null);
  XHR.all[0].respond(200, {
    messages: [hello('poll'), { type: 'subscribed', channel: 'chat', epoch: 'C', offset: 10 }, { type: 'subscribed', channel: 'news', epoch: 'E', offset: 50 }],
    cursor: 'ignored',
  });
  assert.equal(c.state, 'connected');
  assert.equal(news.subscribed.length, 0);
  assert.equal(fresh.subscribed.length, 1);
  const q2 = query(XHR.all[1].url);
  assert.deepEqual({ ...decodeCursor(q2.cursor) }, { chat: { epoch: 'C', offset: 10 }, news: { epoch: 'E', offset: 3 } });
  XHR.all[1].respond(200, { messages: [msg('news', 4), msg('chat', 11)], cursor: 'CUR2' });
  assert.equal(query(XHR.all[2].url).cursor, 'CUR2');
  assert.deepEqual(news.data, [4]);
  assert.deepEqual(fresh.data, [11]);
  // a held poll that never answers is a failure after pollTimeout
  clock.advance(40000);
  assert.ok(XHR.all[2].aborted);
});

test('poll: a long channel list goes as a POST form', () => {
  const { c, XHR } = setup(Client, { transports: ['poll'] });
  for (let i = 0; i < 200; i++) c.subscribe('channel-with-a-long-name-' + i, () => {});
  c.connect();
  const x = XHR.all[0];
  assert.equal(x.method, 'POST');
  assert.equal(x.url, 'https://push.example.com/connect/poll');
  assert.equal(x.headers['Content-Type'], 'application/x-www-form-urlencoded');
  assert.equal(new URLSearchParams(x.body).getAll('channel').length, 200);
});

test('sse: a changed channel set reopens the EventSource with a cursor, the old one closes at the new hello', () => {
  const { c, clock, ES } = setup(Client, { transports: ['sse'] });
  const news = collect(c, 'news');
  c.connect();
  const es1 = ES.all[0];
  es1.emit(hello('sse'), { type: 'subscribed', channel: 'news', epoch: 'E', offset: 5 }, msg('news', 6));
  const chat = collect(c, 'chat');
  clock.tick();
  const es2 = ES.all[1];
  const q = query(es2.url);
  assert.deepEqual(q.channels, ['chat', 'news']);
  assert.deepEqual({ ...decodeCursor(q.cursor) }, { news: { epoch: 'E', offset: 6 } });
  es1.emit(msg('news', 7)); // the old stream still delivers until the new one says hello
  assert.equal(es1.closed, false);
  es2.emit(hello('sse'), { type: 'subscribed', channel: 'chat', epoch: 'C', offset: 0 }, msg('news', 7), msg('news', 8), msg('chat', 1));
  assert.equal(es1.closed, true);
  assert.deepEqual(news.data, [6, 7, 8]);
  assert.deepEqual(chat.data, [1]);
  assert.equal(c.state, 'connected');
});

test('jsonp: the same long-poll session through the injected script loader', () => {
  const { c, jsonp } = setup(Client, { transports: ['jsonp'] });
  const news = collect(c, 'news', { since: { epoch: 'E', offset: 1 } });
  c.connect();
  assert.equal(query(jsonp[0].url).path, '/connect/poll');
  assert.equal(query(jsonp[0].url).cursor, null);
  jsonp[0].done(null, { messages: [hello('jsonp'), { type: 'subscribed', channel: 'news', epoch: 'E', offset: 9 }], cursor: 'X' });
  assert.equal(c.transport, 'jsonp');
  assert.deepEqual({ ...decodeCursor(query(jsonp[1].url).cursor) }, { news: { epoch: 'E', offset: 1 } });
  jsonp[1].done(null, { messages: [msg('news', 2), msg('news', 3)], cursor: 'Y' });
  assert.equal(query(jsonp[2].url).cursor, 'Y');
  assert.deepEqual(news.data, [2, 3]);
  c.disconnect();
  assert.ok(jsonp[2].cancelled);
});
