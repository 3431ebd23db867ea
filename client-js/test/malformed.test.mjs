// What the server (or something between it and the page) may send that the
// client must survive: null frames in a poll answer, frames of unknown
// types and shapes, and channel names that are also names of Object's
// prototype members (valid channel names: `A-Z a-z 0-9 _ - : # . @ =`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, encodeCursor } from '../.build/index.js';
import { setup, collect, hello, msg, query } from './fakes.mjs';

test('poll: an answer with null or odd entries neither throws nor stops the poll loop', () => {
  const { c, clock, XHR } = setup(Client, { transports: ['poll'] });
  const news = collect(c, 'news');
  c.connect();
  XHR.all[0].respond(200, { messages: [hello('poll'), { type: 'subscribed', channel: 'news', epoch: 'E', offset: 0 }], cursor: 'C0' });
  XHR.last().respond(200, { messages: [null, msg('news', 1), 7, 'x', [], { type: 42 }, msg('news', 2)], cursor: 'C2' });
  assert.deepEqual(news.data, [1, 2]);
  assert.equal(query(XHR.last().url).cursor, 'C2', 'the next poll went out');
  XHR.last().respond(200, { messages: [msg('news', 3)], cursor: 'C3' });
  assert.deepEqual(news.data, [1, 2, 3]);
  assert.equal(c.state, 'connected');
  clock.tick();
});

test('websocket: odd frames in a batch do not throw or cut the batch short', () => {
  const { c, WS, seen } = setup(Client);
  const news = collect(c, 'news');
  c.connect();
  const ws = WS.all[0];
  ws.recv(hello(), { type: 'subscribed', id: 1, channel: 'news', epoch: 'E', offset: 0 });
  const odd = [
    '{"type":"message","channel":"toString","offset":1,"epoch":"E"}',
    '{"type":"message","channel":"__proto__","offset":1,"epoch":"E","data":1}',
    '{"type":"subscribed","channel":"constructor","epoch":"E","offset":1}',
    '{"type":"join","channel":"hasOwnProperty","client":"c","user":"u"}',
    '{"type":"reply","id":"__proto__"}',
    '{"type":"error","id":"constructor","code":400,"reason":"x"}',
    '{"type":"nonsense"}',
    'not json',
    '[1,2]',
    'null',
  ];
  ws.recv(msg('news', 1), ...odd, msg('news', 2));
  assert.deepEqual(news.data, [1, 2]);
  assert.equal(c.position('toString'), undefined);
  assert.equal(c.position('news').offset, 2);
  assert.deepEqual(seen.recoveries, []);
});

test('channels named like Object members subscribe, deliver and resume like any other', () => {
  const { c, clock, WS, ES } = setup(Client, { transports: ['websocket', 'sse'] });
  const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty'];
  const got = names.map((n) => collect(c, n));
  c.connect();
  const ws = WS.all[0];
  ws.recv(hello('ws', 0));
  assert.deepEqual(
    ws.sent.map((s) => s.channel),
    names,
  );
  ws.recv(...names.map((n, i) => ({ type: 'subscribed', id: i + 1, channel: n, epoch: 'E', offset: 0 })));
  ws.recv(...names.map((n) => msg(n, 1)), ...names.map((n) => msg(n, 1)));
  assert.deepEqual(
    got.map((g) => g.data),
    names.map(() => [1]),
  );
  for (const n of names) assert.deepEqual(c.position(n), { epoch: 'E', offset: 1 });
  assert.equal(c.position('valueOf'), undefined);
  // Fall back to SSE: the cursor names every channel at its position.
  for (let i = 0; i < 3; i++) {
    WS.all.at(-1).drop(1006);
    clock.advance(i < 2 ? 2000 : 0);
    if (i < 2) WS.all.at(-1).recv(hello('ws', 0));
  }
  clock.tick();
  const q = query(ES.all[0].url);
  const want = Object.create(null);
  for (const n of names) want[n] = { epoch: 'E', offset: 1 };
  assert.equal(q.cursor, encodeCursor(want));
});

test('poll: a refusal without a reason or a code is a failed request, not an exception', () => {
  const { c, clock, XHR, jsonp } = setup(Client, { transports: ['poll', 'jsonp'] });
  collect(c, 'news');
  c.connect();
  XHR.all[0].respond(403, { error: { code: 403 } });
  clock.tick();
  assert.equal(jsonp.length, 1, 'on to the next transport');
  jsonp[0].done(null, { error: {} });
  clock.tick();
  assert.equal(c.state, 'connecting');
});
