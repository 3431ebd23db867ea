import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../.build/index.js';
import { setup, collect, hello, msg } from './fakes.mjs';

test('publish over websocket: Promise resolves on reply, rejects on error', async () => {
  const { c, WS } = setup(Client);
  c.connect();
  const ws = WS.all[0];
  ws.recv(hello());
  const ok = c.publish('chat', { text: 'hi' });
  const bad = c.publish('secret', 1);
  assert.deepEqual(ws.sent, [
    { type: 'publish', id: 1, channel: 'chat', data: { text: 'hi' } },
    { type: 'publish', id: 2, channel: 'secret', data: 1 },
  ]);
  ws.recv({ type: 'reply', id: 1, channel: 'chat', offset: 9, epoch: 'E' }, { type: 'error', id: 2, code: 403, reason: 'permission denied' });
  assert.deepEqual(await ok, { channel: 'chat', offset: 9, epoch: 'E' });
  await assert.rejects(bad, (e) => e.code === 403 && e.reason === 'permission denied' && e instanceof Error);
});

test('publish: callback style, queued until connected, failed when the connection drops', () => {
  const { c, WS } = setup(Client);
  const results = [];
  c.connect();
  assert.equal(c.publish('chat', 'early', (e, r) => results.push([e, r])), undefined);
  const ws = WS.all[0];
  ws.recv(hello());
  assert.deepEqual(ws.sent, [{ type: 'publish', id: 1, channel: 'chat', data: 'early' }]);
  ws.recv({ type: 'reply', id: 1, channel: 'chat', offset: 1, epoch: 'E' });
  c.publish('chat', 'lost?', (e, r) => results.push([e && e.code, r]));
  ws.drop(1006);
  assert.deepEqual(results, [
    [null, { channel: 'chat', offset: 1, epoch: 'E' }],
    [0, undefined],
  ]);
});

test('publish over sse/poll goes to POST /connect/publish', async () => {
  const { c, XHR } = setup(Client, { transports: ['poll'], token: 'T' });
  c.connect();
  XHR.all[0].respond(200, { messages: [hello('poll')], cursor: 'AQA' });
  const p = c.publish('chat', { text: 'hi' });
  const x = XHR.all.find((r) => r.url.endsWith('/connect/publish'));
  assert.equal(x.method, 'POST');
  assert.equal(x.headers['Content-Type'], 'application/json');
  assert.deepEqual(JSON.parse(x.body), { channel: 'chat', data: { text: 'hi' }, token: 'T' });
  x.respond(200, { channel: 'chat', offset: 3, epoch: 'E' });
  assert.deepEqual(await p, { channel: 'chat', offset: 3, epoch: 'E' });
  const q = c.publish('chat', 2);
  XHR.all.at(-1).respond(429, { error: { code: 429, reason: 'too many' } });
  await assert.rejects(q, (e) => e.code === 429 && e.reason === 'too many');
});

test('subscribe errors reach the subscription error handler and end it', () => {
  const { c, WS, seen } = setup(Client);
  const got = collect(c, 'private');
  c.connect();
  WS.all[0].recv(hello(), { type: 'error', id: 1, code: 403, reason: 'permission denied' });
  assert.equal(got.errors.length, 1);
  assert.equal(got.errors[0].code, 403);
  assert.equal(c.subscription('private'), undefined);
  WS.all[0].recv(msg('private', 1));
  assert.deepEqual(got.data, []);
  assert.equal(seen.errors.length, 0);
  assert.throws(() => c.subscribe('x', () => {}) && c.subscribe('x', () => {}), /already subscribed/);
});

test('an exception in application code does not break delivery', () => {
  const thrown = [];
  const { c, WS, clock } = setup(Client);
  const ok = [];
  c.subscribe('a', () => {
    throw new Error('app bug');
  });
  c.subscribe('b', (d) => ok.push(d));
  c.connect();
  WS.all[0].recv(
    hello(),
    { type: 'subscribed', id: 1, channel: 'a', epoch: 'E', offset: 0 },
    { type: 'subscribed', id: 2, channel: 'b', epoch: 'E', offset: 0 },
    msg('a', 1),
    msg('b', 1),
  );
  assert.deepEqual(ok, [1]);
  try {
    clock.tick();
  } catch (e) {
    thrown.push(e.message);
  }
  assert.deepEqual(thrown, ['app bug']);
});

test('publish while offline: at most 100 wait for the connection, the rest fail at once', () => {
  const { c, clock, WS } = setup(Client, { random: () => 1 });
  c.connect();
  WS.all[0].recv(hello('ws', 0));
  WS.all[0].drop(1006); // offline: the app keeps publishing
  const results = [];
  for (let i = 0; i < 150; i++) c.publish('cursor', i, (e) => results.push(e ? [i, e.code, e.reason] : i));
  assert.equal(results.length, 50, 'the publishes past the queue failed at once');
  assert.deepEqual(results[0], [100, 503, 'publish queue full']);
  clock.advance(1000);
  const ws = WS.all[1];
  ws.recv(hello('ws', 0));
  const sent = ws.sent.filter((s) => s.type === 'publish');
  assert.deepEqual(
    sent.map((s) => s.data),
    Array.from({ length: 100 }, (_, i) => i),
    'the first 100 go out in order on the new connection',
  );
});
