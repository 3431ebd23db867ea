// Unsubscribe and subscribe again to the same channel before the server
// answered: what the old subscription still has in flight must not move the
// new one (React's StrictMode mounts, unmounts and mounts again at once).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, decodeCursor } from '../.build/index.js';
import { setup, collect, hello, msg, query } from './fakes.mjs';

const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

test('websocket: subscribe, unsubscribe, subscribe with since: the new subscription gets its replay, nothing skipped', () => {
  const { c, WS, seen } = setup(Client);
  c.connect();
  const ws = WS.all[0];
  ws.recv(hello('ws', 0));
  const first = collect(c, 'news'); // id 1
  first.sub.unsubscribe(); // id 2
  const again = collect(c, 'news', { since: { epoch: 'E', offset: 10 } }); // id 3
  assert.deepEqual(
    ws.sent.map((s) => [s.type, s.id]),
    [
      ['subscribe', 1],
      ['unsubscribe', 2],
      ['subscribe', 3],
    ],
  );
  // The server answers in order: the first subscribe (at the live position,
  // and a live message), the unsubscribe, then the second with its replay.
  ws.recv(
    { type: 'subscribed', id: 1, channel: 'news', epoch: 'E', offset: 50 },
    msg('news', 51),
    { type: 'reply', id: 2, channel: 'news' },
    { type: 'subscribed', id: 3, channel: 'news', epoch: 'E', offset: 10, recovered: true },
    ...range(11, 51).map((n) => msg('news', n)),
  );
  ws.recv(msg('news', 52));
  assert.deepEqual(again.data, range(11, 52), 'every message after the saved position, once');
  assert.deepEqual(again.subscribed, [{ channel: 'news', epoch: 'E', offset: 10, recovered: true }]);
  assert.deepEqual(seen.recoveries, [{ channel: 'news', recovered: true, epoch: 'E', offset: 10 }], 'no gap reported');
  assert.deepEqual(first.data, []);
  assert.deepEqual(c.position('news'), { epoch: 'E', offset: 52 });
});

test('websocket: subscribe, unsubscribe, subscribe: one subscribed callback, and no gap from the old subscription', () => {
  const { c, WS, seen } = setup(Client);
  c.connect();
  const ws = WS.all[0];
  ws.recv(hello('ws', 0));
  collect(c, 'news').sub.unsubscribe();
  const again = collect(c, 'news');
  ws.recv(
    { type: 'subscribed', id: 1, channel: 'news', epoch: 'E', offset: 50 },
    { type: 'reply', id: 2, channel: 'news' },
    // 51 was published between the unsubscribe and the second subscribe.
    { type: 'subscribed', id: 3, channel: 'news', epoch: 'E', offset: 51 },
    msg('news', 52),
  );
  assert.deepEqual(again.subscribed, [{ channel: 'news', epoch: 'E', offset: 51 }]);
  assert.deepEqual(again.data, [52]);
  assert.deepEqual(seen.recoveries, []);
});

test('a subscribe left unanswered by a dropped WebSocket does not hold back delivery on the fallback', () => {
  const { c, clock, WS, ES } = setup(Client, { transports: ['websocket', 'sse'] });
  c.connect();
  WS.all[0].recv(hello('ws', 0));
  const news = collect(c, 'news'); // id 1, never answered
  for (let i = 0; i < 3; i++) {
    WS.all.at(-1).drop(1006);
    clock.advance(i < 2 ? 2000 : 0);
    if (i < 2) WS.all.at(-1).recv(hello('ws', 0));
  }
  clock.tick();
  ES.all[0].emit(hello('sse'), { type: 'subscribed', channel: 'news', epoch: 'E', offset: 0 }, msg('news', 1));
  assert.equal(c.transport, 'sse');
  assert.deepEqual(news.data, [1]);
});

test('poll: a request refused for one channel ends that subscription, as on WebSocket, and the others go on', () => {
  // Behind a proxy that blocks WebSocket: SSE (its 403 unreadable), then poll.
  const { c, clock, ES, XHR, seen } = setup(Client, { transports: ['sse', 'poll'] });
  const news = collect(c, 'news');
  const secret = collect(c, 'orders:7');
  c.connect();
  ES.all[0].fail();
  clock.tick();
  assert.deepEqual(query(XHR.all[0].url).channels, ['news', 'orders:7']);
  XHR.all[0].respond(403, { error: { code: 403, reason: 'orders:7: permission denied' } });
  assert.equal(secret.errors.length, 1);
  assert.equal(secret.errors[0].code, 403);
  assert.equal(secret.errors[0].reason, 'orders:7: permission denied');
  assert.equal(c.subscription('orders:7'), undefined);
  clock.tick();
  assert.deepEqual(query(XHR.last().url).channels, ['news'], 'at once, without the refused channel');
  XHR.last().respond(200, { messages: [hello('poll'), { type: 'subscribed', channel: 'news', epoch: 'E', offset: 0 }], cursor: 'C0' });
  XHR.last().respond(200, { messages: [msg('news', 1)], cursor: 'C1' });
  assert.deepEqual(news.data, [1]);
  assert.equal(c.state, 'connected');
  assert.deepEqual(seen.errors, []);
});

const subd = (ch, offset = 0) => ({ type: 'subscribed', channel: ch, epoch: 'E', offset });

test('sse: unsubscribe, then subscribe with since: the stream reopens from since, the old one delivers nothing to it', () => {
  const { c, clock, ES, seen } = setup(Client, { transports: ['sse'] });
  const first = collect(c, 'news');
  c.connect();
  ES.all[0].emit(hello('sse'), subd('news', 50), msg('news', 51));
  first.sub.unsubscribe();
  const again = collect(c, 'news', { since: { epoch: 'E', offset: 40 } });
  clock.tick();
  assert.equal(ES.all.length, 2, 'a new request for the new subscription');
  const q = query(ES.all[1].url);
  assert.deepEqual(q.channels, ['news']);
  assert.deepEqual({ ...decodeCursor(q.cursor) }, { news: { epoch: 'E', offset: 40 } });
  ES.all[0].emit(msg('news', 52)); // the old subscription's, still on the old stream
  assert.deepEqual(again.data, []);
  ES.all[1].emit(hello('sse'), { ...subd('news', 40), recovered: true }, ...range(41, 52).map((o) => msg('news', o)));
  assert.ok(ES.all[0].closed);
  assert.deepEqual(again.data, range(41, 52));
  assert.equal(again.subscribed.length, 1);
  assert.deepEqual(seen.recoveries.filter((r) => !r.recovered), [], 'no false gap');
  assert.deepEqual(first.data, [51]);
});

test('poll: unsubscribe, then subscribe again once the restart went out: the new subscription gets its subscribed', () => {
  const { c, clock, XHR } = setup(Client, { transports: ['poll'] });
  const first = collect(c, 'news');
  collect(c, 'other');
  c.connect();
  XHR.all[0].respond(200, { messages: [hello('poll'), subd('news'), subd('other')], cursor: 'C0' });
  const held = XHR.last();
  first.sub.unsubscribe();
  clock.tick(); // a restart without news
  const again = collect(c, 'news');
  clock.tick();
  const open = XHR.open();
  assert.deepEqual(open.map((x) => query(x.url).channels), [['news', 'other'], ['news', 'other']]);
  assert.equal(open[0], held);
  held.respond(200, { messages: [msg('news', 1)], cursor: 'C1' }); // the old subscription's
  assert.deepEqual(again.data, []);
  open[1].respond(200, { messages: [hello('poll'), subd('news', 1), subd('other')], cursor: 'C2' });
  assert.deepEqual(again.subscribed.map((s) => s.offset), [1]);
  XHR.last().respond(200, { messages: [msg('news', 2)], cursor: 'C3' });
  assert.deepEqual(again.data, [2]);
  assert.equal(XHR.open().length, 1);
});
