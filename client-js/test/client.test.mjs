import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, decodeCursor, encodeCursor } from '../.build/index.js';
import { setup, collect, hello, msg, query } from './fakes.mjs';

test('websocket: hello, subscribe, batched frames split on newline', () => {
  const { c, WS, seen } = setup(Client, { token: 'T' });
  const got = collect(c, 'news');
  c.connect();
  assert.equal(WS.all.length, 1);
  const ws = WS.all[0];
  assert.equal(ws.url, 'wss://push.example.com/connect/ws?token=T');
  assert.equal(c.state, 'connecting');
  ws.recv(hello());
  assert.equal(c.state, 'connected');
  assert.equal(c.transport, 'websocket');
  assert.equal(c.session, 's1');
  assert.deepEqual(seen.transports, ['websocket']);
  assert.deepEqual(ws.sent, [{ type: 'subscribe', id: 1, channel: 'news' }]);
  ws.recv({ type: 'subscribed', id: 1, channel: 'news', epoch: 'E', offset: 6 }, msg('news', 7), msg('news', 8));
  assert.deepEqual(got.data, [7, 8]);
  assert.deepEqual(got.subscribed, [{ channel: 'news', epoch: 'E', offset: 6 }]);
  assert.deepEqual(c.position('news'), { epoch: 'E', offset: 8 });
  // later subscribe and unsubscribe go as commands
  const other = collect(c, 'orders:42');
  assert.deepEqual(ws.sent[1], { type: 'subscribe', id: 2, channel: 'orders:42' });
  other.sub.unsubscribe();
  assert.deepEqual(ws.sent[2], { type: 'unsubscribe', id: 3, channel: 'orders:42' });
  ws.recv(msg('orders:42', 1));
  assert.deepEqual(other.data, []);
  assert.deepEqual(seen.states, ['connecting', 'connected']);
});

test('fallback order: websocket, sse, poll, jsonp, then back off and start over', () => {
  const { c, clock, WS, ES, XHR, jsonp } = setup(Client);
  collect(c, 'news');
  c.connect();
  assert.equal(WS.all.length, 1);
  clock.advance(4999);
  assert.equal(ES.all.length, 0);
  clock.advance(1); // no hello within 5 s
  assert.ok(WS.all[0].closed);
  clock.tick();
  assert.equal(ES.all.length, 1);
  assert.equal(query(ES.all[0].url).path, '/connect/sse');
  ES.all[0].fail(); // closes before opening
  assert.ok(ES.all[0].closed);
  clock.tick();
  assert.equal(XHR.all.length, 1);
  assert.equal(query(XHR.all[0].url).path, '/connect/poll');
  XHR.all[0].respond(502, 'bad gateway');
  clock.tick();
  assert.equal(jsonp.length, 1);
  assert.deepEqual(query(jsonp[0].url).channels, ['news']);
  jsonp[0].done(new Error('load failed'));
  clock.tick();
  assert.equal(WS.all.length, 1, 'after the last transport it backs off');
  assert.equal(c.state, 'connecting');
  clock.advance(750); // backoff(0) with random 0.5 = 750 ms
  assert.equal(WS.all.length, 2, 'and starts over with the first transport');
});

test('fallback: a configured order, and a transport missing from the environment is skipped', () => {
  const { c, clock, WS, XHR } = setup(Client, { transports: ['sse', 'websocket', 'poll'], EventSource: undefined });
  c.connect();
  clock.tick();
  assert.equal(WS.all.length, 1, 'no EventSource: websocket next');
  WS.all[0].drop(1006);
  clock.tick();
  assert.equal(XHR.all.length, 1);
});

test('failure detector: no hello in time (proxy accepts the upgrade, passes nothing)', () => {
  const { c, clock, WS, ES } = setup(Client, { helloTimeout: 3000 });
  c.connect();
  clock.advance(2999);
  assert.equal(ES.all.length, 0);
  clock.advance(1);
  clock.tick();
  assert.ok(WS.all[0].closed);
  assert.equal(ES.all.length, 1);
});

test('failure detector: closed before hello falls back at once', () => {
  const { c, clock, WS, ES } = setup(Client);
  c.connect();
  WS.all[0].drop(1006);
  clock.tick();
  assert.equal(ES.all.length, 1);
});

test('failure detector: hello then quick drops three times in a row falls back', () => {
  const { c, clock, WS, ES } = setup(Client);
  c.connect();
  for (let i = 0; i < 3; i++) {
    const ws = WS.all[i];
    ws.recv(hello());
    clock.advance(1000);
    ws.drop(1006);
    if (i < 2) {
      clock.advance(2000);
      assert.equal(WS.all.length, i + 2, 'reconnects on websocket');
      assert.equal(ES.all.length, 0);
    }
  }
  clock.tick();
  assert.equal(ES.all.length, 1, 'third quick drop: sse');
  assert.equal(WS.all.length, 3);
});

test('reconnect: drops of stable connections stay on the transport with backoff between floor and ceiling', () => {
  const { c, clock, WS, ES } = setup(Client, { random: () => 1 });
  c.connect();
  for (let i = 0; i < 6; i++) {
    WS.all[i].recv(hello());
    clock.advance(15000); // stable
    WS.all[i].drop(1006);
    clock.advance(999);
    assert.equal(WS.all.length, i + 1, 'not before the floor+jitter');
    clock.advance(1);
    assert.equal(WS.all.length, i + 2);
  }
  assert.equal(ES.all.length, 0);
  // unstable drops grow the delay up to the ceiling
  const { c: c2, clock: k2, WS: W2 } = setup(Client, { random: () => 1, transports: ["websocket"] });
  c2.connect();
  const delays = [];
  for (let i = 0; i < 8; i++) {
    W2.all[i].drop(1006); // closed before hello: with one transport configured it backs off
    const t0 = k2.now();
    while (W2.all.length === i + 1) k2.advance(50);
    delays.push(k2.now() - t0);
  }
  assert.ok(delays.every((d) => d >= 500 && d <= 20000), String(delays));
  assert.equal(delays[delays.length - 1], 20000);
  void c;
});

test('a refused origin is reported: error event with the reason a poll or JSONP answer carries', () => {
  const { c, clock, WS, ES, XHR, jsonp, seen } = setup(Client);
  const got = collect(c, 'news');
  c.connect();
  // A refused WebSocket handshake and a refused EventSource say nothing.
  WS.all[0].drop(1006);
  clock.tick();
  ES.all[0].fail();
  clock.tick();
  assert.deepEqual(seen.errors, [], 'nothing to say yet: the next transports may work');
  // The server lets a refused page read its 403 (CORS without credentials).
  XHR.all[0].respond(403, { error: { code: 403, reason: 'origin not allowed' } });
  clock.tick();
  // JSONP carries the refusal in the script's call.
  jsonp[0].done(null, { error: { code: 403, reason: 'origin not allowed' } });
  clock.tick();
  assert.equal(seen.errors.length, 1, 'one error after the round of transports');
  assert.equal(seen.errors[0].code, 403);
  assert.equal(seen.errors[0].reason, 'origin not allowed');
  assert.equal(c.state, 'connecting', 'it keeps trying, with backoff');
  assert.deepEqual(got.data, []);
  // The next round, refused again, says so again; a round that connects clears it.
  clock.advance(750);
  WS.all[1].drop(1006);
  clock.tick();
  ES.all[1].fail();
  clock.tick();
  XHR.last().respond(403, { error: { code: 403, reason: 'origin not allowed' } });
  clock.tick();
  jsonp[1].done(new Error('load failed'));
  clock.tick();
  assert.equal(seen.errors.length, 2);
});

test('a network failure on every transport is not an error event', () => {
  const { c, clock, WS, ES, XHR, jsonp, seen } = setup(Client);
  collect(c, 'news');
  c.connect();
  WS.all[0].drop(1006);
  clock.tick();
  ES.all[0].fail();
  clock.tick();
  XHR.all[0].respond(0, ''); // unreadable: no status, no body
  clock.tick();
  jsonp[0].done(new Error('load failed'));
  clock.tick();
  assert.deepEqual(seen.errors, []);
  assert.equal(c.state, 'connecting');
});
