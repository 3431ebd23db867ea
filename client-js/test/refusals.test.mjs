// Refusals that name one channel, on transports that carry the channel set in
// the request (poll, JSONP, SSE): they must end that subscription alone (or,
// for a subscription with its own token, which only WebSocket carries, set
// it aside until WebSocket is back), never the connection or every channel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../.build/index.js';
import { setup, collect, hello, msg, memStorage, query } from './fakes.mjs';

const subd = (ch, offset = 0) => ({ type: 'subscribed', channel: ch, epoch: 'E', offset });

// upgrade answers held polls with nothing until the upgrade probe opens a
// WebSocket (upgradeInterval is 60 s, jittered), and returns it.
function upgrade(clock, WS, XHR) {
  const before = WS.all.length;
  for (let t = 0; t < 90000 && WS.all.length === before; t += 5000) {
    for (const o of XHR.open()) o.respond(200, { messages: [], cursor: 'C' });
    clock.advance(5000);
  }
  assert.ok(WS.all.length > before, 'an upgrade probe opened a WebSocket');
  return WS.all.at(-1);
}

test('channel token: long-poll remembered at page load, its refusal keeps the subscription, WebSocket subscribes it later', () => {
  const storage = memStorage({ 'waterspout:https://push.example.com': JSON.stringify({ t: 'poll', x: 2_000_000_000_000 }) });
  const { c, clock, WS, XHR, seen } = setup(Client, { storage });
  const orders = collect(c, 'orders:7', { token: 'channel-token' });
  const news = collect(c, 'news');
  c.connect();
  assert.deepEqual(query(XHR.last().url).channels, ['news', 'orders:7']);
  // Long-poll cannot carry the channel token: the server refuses the channel.
  XHR.last().respond(403, { error: { code: 403, reason: 'orders:7: permission denied' } });
  clock.tick();
  assert.deepEqual(orders.errors, [], 'not ended: only WebSocket carries its token');
  assert.ok(c.subscription('orders:7'));
  assert.deepEqual(query(XHR.last().url).channels, ['news'], 'at once, without the channel set aside');
  XHR.last().respond(200, { messages: [hello('poll'), subd('news')], cursor: 'C0' });
  XHR.last().respond(200, { messages: [msg('news', 1)], cursor: 'C1' });
  assert.equal(c.transport, 'poll');
  assert.deepEqual(news.data, [1]);
  assert.deepEqual(seen.errors.map((e) => [e.code, e.reason]), [[403, 'orders:7: permission denied (needs websocket: waiting for it)']]); // told once
  const ws = upgrade(clock, WS, XHR);
  ws.recv(hello());
  assert.equal(c.transport, 'websocket');
  assert.deepEqual(
    ws.sent.filter((s) => s.type === 'subscribe').map((s) => [s.channel, s.token]),
    [['orders:7', 'channel-token'], ['news', undefined]],
  );
  ws.recv({ type: 'subscribed', id: ws.sent[0].id, channel: 'orders:7', epoch: 'O', offset: 0 }, msg('orders:7', 1, 'O', 'paid'));
  assert.deepEqual(orders.data, ['paid']);
});

test('channel token: a deploy that passes through long-poll does not end it; the return to WebSocket subscribes it', () => {
  const { c, clock, WS, ES, XHR } = setup(Client);
  const orders = collect(c, 'orders:7', { token: 'channel-token' });
  const news = collect(c, 'news');
  c.connect();
  WS.all[0].recv(hello());
  WS.all[0].drop(1006);
  clock.advance(2000);
  WS.all.at(-1).drop(1006);
  clock.tick();
  ES.all.at(-1).fail();
  clock.tick();
  XHR.last().respond(401, { error: { code: 401, reason: 'orders:7: token required' } });
  clock.tick();
  assert.deepEqual(orders.errors, []);
  assert.deepEqual(query(XHR.last().url).channels, ['news']);
  XHR.last().respond(200, { messages: [hello('poll'), subd('news')], cursor: 'C0' });
  assert.equal(c.state, 'connected');
  const ws = upgrade(clock, WS, XHR);
  ws.recv(hello());
  assert.deepEqual(
    ws.sent.filter((s) => s.type === 'subscribe').map((s) => [s.channel, s.token]),
    [['orders:7', 'channel-token'], ['news', undefined]],
  );
  assert.ok(c.subscription('orders:7'));
  assert.deepEqual(news.errors, []);
});

test('channel token: subscribed while on long-poll, its refused restart keeps the live poll and the subscription', () => {
  const { c, clock, XHR, seen } = setup(Client, { transports: ['websocket', 'poll'], storage: memStorage({ 'waterspout:https://push.example.com': JSON.stringify({ t: 'poll', x: 2_000_000_000_000 }) }) });
  const news = collect(c, 'news');
  c.connect();
  XHR.all[0].respond(200, { messages: [hello('poll'), subd('news')], cursor: 'C0' });
  const held = XHR.last();
  const orders = collect(c, 'orders:7', { token: 'channel-token' });
  clock.tick();
  const restart = XHR.last();
  assert.deepEqual(query(restart.url).channels, ['news', 'orders:7']);
  restart.respond(401, { error: { code: 401, reason: 'orders:7: token required' } });
  clock.tick();
  assert.equal(held.aborted, false, 'the live poll goes on');
  assert.equal(c.state, 'connected');
  assert.deepEqual(orders.errors, []);
  assert.ok(c.subscription('orders:7'));
  held.respond(200, { messages: [msg('news', 1)], cursor: 'C1' });
  assert.deepEqual(news.data, [1]);
  assert.deepEqual(seen.disconnects, []);
});

test('channel token: without WebSocket among the transports, a refusal naming it ends it as any other', () => {
  const { c, clock, XHR } = setup(Client, { transports: ['poll'] });
  const orders = collect(c, 'orders:7', { token: 'channel-token' });
  collect(c, 'news');
  c.connect();
  XHR.last().respond(403, { error: { code: 403, reason: 'orders:7: permission denied' } });
  assert.deepEqual(orders.errors.map((e) => [e.code, e.reason]), [[403, 'orders:7: permission denied']]);
  assert.equal(c.subscription('orders:7'), undefined);
  clock.tick();
  assert.deepEqual(query(XHR.last().url).channels, ['news']);
});

test('poll: subscribing to a refused channel while connected ends that subscription at once and keeps the live poll', () => {
  const { c, clock, XHR, jsonp, seen } = setup(Client, { transports: ['poll', 'jsonp'] });
  const news = collect(c, 'news');
  c.connect();
  XHR.all[0].respond(200, { messages: [hello('poll'), subd('news')], cursor: 'C0' });
  let held = XHR.last();
  for (let round = 1; round <= 3; round++) {
    const name = 'secret:' + round;
    const secret = collect(c, name);
    clock.tick();
    const restart = XHR.last();
    assert.deepEqual(query(restart.url).channels, ['news', name]);
    restart.respond(403, { error: { code: 403, reason: name + ': permission denied' } });
    assert.deepEqual(secret.errors.map((e) => [e.code, e.reason]), [[403, name + ': permission denied']], 'at once');
    assert.equal(c.subscription(name), undefined);
    clock.tick();
    assert.equal(held.aborted, false, 'the live poll goes on');
    assert.equal(XHR.open().length, 1, 'no other request');
    assert.equal(c.state, 'connected');
    held.respond(200, { messages: [msg('news', round)], cursor: 'C' + round });
    held = XHR.last();
    assert.deepEqual(query(held.url).channels, ['news']);
  }
  assert.deepEqual(news.data, [1, 2, 3]);
  assert.equal(c.transport, 'poll');
  assert.deepEqual(seen.transports, ['poll']);
  assert.deepEqual(seen.disconnects, []);
  assert.equal(jsonp.length, 0, 'no fallback to JSONP');
});

test('poll: a refusal without "channel: " in its reason names no channel', () => {
  // 'forbidde' is 'forbidden' minus its last character: the reason must not
  // be cut at indexOf(': ') = -1.
  const { c, clock, XHR } = setup(Client, { transports: ['poll'] });
  const f = collect(c, 'forbidde');
  c.connect();
  XHR.last().respond(403, { error: { code: 403, reason: 'forbidden' } });
  clock.tick();
  assert.deepEqual(f.errors, []);
  assert.ok(c.subscription('forbidde'));
});

test('subscribe: a channel name the server would refuse fails on its error handler, and no request names it', () => {
  for (const transports of [['poll'], ['sse'], ['jsonp'], ['websocket']]) {
    const { c, clock, WS, ES, XHR, jsonp, seen } = setup(Client, { transports });
    const news = collect(c, 'news');
    const bad = ['a b', '', 'x'.repeat(256), 'caf\u00e9', 'a/b'].map((ch) => collect(c, ch));
    const ok = collect(c, 'A-z_0:9#.@=' + 'y'.repeat(244)); // every allowed character, 255 bytes
    for (const b of bad) assert.equal(b.errors.length, 0, 'not from inside subscribe()');
    c.connect();
    clock.tick();
    for (const b of bad) {
      assert.deepEqual(b.errors.map((e) => [e.code, e.reason]), [[400, 'invalid channel name']], transports[0]);
      assert.equal(c.subscription(b.sub.channel), undefined);
    }
    assert.deepEqual(ok.errors, []);
    const urls = [...ES.all, ...XHR.all, ...jsonp].map((x) => query(x.url).channels);
    for (const chs of urls) assert.deepEqual(chs, [ok.sub.channel, 'news']);
    if (transports[0] === 'websocket') {
      WS.all[0].recv(hello());
      assert.deepEqual(WS.all[0].sent.map((s) => s.channel), ['news', ok.sub.channel]);
    }
    assert.deepEqual(news.errors, []);
    assert.deepEqual(seen.errors, []);
  }
});

test('subscribe: past the maxChannels of the last hello it fails on its error handler on every transport', () => {
  const small = (t) => ({ ...hello(t), limits: { maxMessageBytes: 65536, maxChannels: 2, maxQueueBytes: 2097152 } });
  for (const t of ['poll', 'websocket']) {
    const { c, clock, WS, XHR } = setup(Client, { transports: [t] });
    collect(c, 'a');
    c.connect();
    if (t === 'poll') XHR.last().respond(200, { messages: [small('poll'), subd('a')], cursor: 'C0' });
    else WS.all[0].recv(small());
    const b = collect(c, 'b');
    const third = collect(c, 'c');
    clock.tick();
    assert.deepEqual(third.errors.map((e) => [e.code, e.reason]), [[429, 'too many channels']], t);
    assert.deepEqual(b.errors, []);
    assert.equal(c.subscription('c'), undefined);
    if (t === 'poll') assert.deepEqual(query(XHR.last().url).channels, ['a', 'b']);
    else assert.deepEqual(WS.all[0].sent.map((s) => s.channel), ['a', 'b']);
    // A place is free again after an unsubscribe.
    b.sub.unsubscribe();
    const d = collect(c, 'd');
    clock.tick();
    assert.deepEqual(d.errors, []);
    assert.ok(c.subscription('d'));
  }
});

test('channel token: when it was the only channel, its long-poll refusal sends the client to WebSocket at once', () => {
  const storage = memStorage({ 'waterspout:https://push.example.com': JSON.stringify({ t: 'poll', x: 2_000_000_000_000 }) });
  const { c, clock, WS, XHR, seen } = setup(Client, { storage });
  const orders = collect(c, 'orders:7', { token: 'channel-token' });
  c.connect();
  XHR.last().respond(403, { error: { code: 403, reason: 'orders:7: permission denied' } });
  clock.tick();
  assert.equal(XHR.all.length, 1, 'no request without channels (the server refuses it: 400 no channel)');
  assert.equal(WS.all.length, 1);
  WS.all[0].recv(hello());
  assert.deepEqual(WS.all[0].sent.map((s) => [s.channel, s.token]), [['orders:7', 'channel-token']]);
  assert.deepEqual(orders.errors, []);
  assert.deepEqual(seen.errors.map((e) => [e.code, e.reason]), [[403, 'orders:7: permission denied (needs websocket: waiting for it)']]); // told once
});
