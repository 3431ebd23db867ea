import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../.build/index.js';
import { setup, collect, hello, msg, query } from './fakes.mjs';

function live(opts) {
  const env = setup(Client, opts);
  collect(env.c, 'news');
  env.c.connect();
  env.WS.all[0].recv(hello());
  return { ...env, ws: env.WS.all[0] };
}

const disconnect = (code, reason, reconnect) => ({ type: 'disconnect', code, reason, reconnect });

test('3001 shutdown: reconnect after a random 0..2 s delay, not the backoff', () => {
  for (const [r, at] of [
    [0, 0],
    [0.5, 1000],
    [0.999, 1998],
  ]) {
    const { clock, WS, ws, seen } = live({ random: () => r });
    ws.recv(disconnect(3001, 'shutdown', true));
    assert.ok(ws.closed);
    assert.deepEqual(seen.disconnects, [{ code: 3001, reason: 'shutdown', reconnect: true }]);
    if (at > 0) {
      clock.advance(at - 1);
      assert.equal(WS.all.length, 1);
    }
    clock.advance(at > 0 ? 1 : 0);
    assert.equal(WS.all.length, 2, `random ${r}`);
  }
});

test('reconnect codes back off; unknown 3xxx reconnects; WebSocket close codes without a frame count too', () => {
  for (const code of [3002, 3003, 3004, 3005, 3006, 3008, 3400]) {
    const { clock, WS, ws, c } = live();
    ws.recv(disconnect(code, 'x', true));
    assert.equal(c.state, 'connecting');
    clock.advance(code === 3008 ? 20000 : 1000);
    assert.equal(WS.all.length, 2, String(code));
  }
  const { clock, WS, ws, seen } = live();
  ws.drop(3005, 'stale connection');
  assert.deepEqual(seen.disconnects, [{ code: 3005, reason: 'stale connection', reconnect: true }]);
  clock.advance(1000);
  assert.equal(WS.all.length, 2);
});

test('rate limited (3008) backs off longer than an ordinary drop', () => {
  const { clock, WS, ws } = live({ random: () => 0.5 });
  ws.recv(disconnect(3008, 'rate limited', true));
  clock.advance(4000);
  assert.equal(WS.all.length, 1);
  clock.advance(10000);
  assert.equal(WS.all.length, 2);
});

test('terminal codes stop reconnecting and report the error', () => {
  for (const [code, reconnect] of [
    [3500, false],
    [3501, false],
    [3502, false],
    [3503, false],
    [4001, false],
    [3999, undefined],
  ]) {
    const { clock, WS, ws, c, seen } = live();
    ws.recv(disconnect(code, 'nope', reconnect));
    assert.equal(c.state, 'disconnected');
    assert.equal(seen.errors[0].code, code);
    clock.advance(120000);
    assert.equal(WS.all.length, 1, String(code));
  }
  // an application code with reconnect:true reconnects
  const { clock, WS, ws } = live();
  ws.recv(disconnect(4001, 'app', true));
  clock.advance(1000);
  assert.equal(WS.all.length, 2);
});

test('getToken: fetched before the first connect, again on 3007, once more on 3502', async () => {
  let n = 0;
  const { c, clock, WS, seen } = setup(Client, { getToken: () => Promise.resolve('tok' + ++n) });
  c.connect();
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(query(WS.all[0].url).token, 'tok1');
  WS.all[0].recv(hello());
  WS.all[0].recv(disconnect(3007, 'token expired', true));
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(query(WS.all[1].url).token, 'tok2');
  WS.all[1].recv(disconnect(3502, 'invalid token', false));
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(query(WS.all[2].url).token, 'tok3', 'one more try with a fresh token');
  WS.all[2].recv(disconnect(3502, 'invalid token', false));
  await Promise.resolve();
  clock.advance(60000);
  assert.equal(WS.all.length, 3);
  assert.equal(c.state, 'disconnected');
  assert.equal(seen.errors.at(-1).code, 3502);
});

test('getToken: callback style works without Promise', () => {
  const { c, WS } = setup(Client, { getToken: (cb) => cb(null, 'cbtok') });
  c.connect();
  assert.equal(query(WS.all[0].url).token, 'cbtok');
});

test('online and visibility: reconnect at once when waiting', () => {
  const listeners = {};
  const target = {
    addEventListener: (t, f) => (listeners[t] = f),
    removeEventListener: (t) => delete listeners[t],
  };
  const doc = { hidden: false, ...target };
  const { c, WS, ws } = live({ events: target, document: doc, random: () => 1 });
  ws.drop(1006); // waiting 1000 ms in backoff
  listeners.online();
  assert.equal(WS.all.length, 2, 'online: at once');
  WS.all[1].recv(hello());
  WS.all[1].drop(1006);
  doc.hidden = true;
  listeners.visibilitychange();
  assert.equal(WS.all.length, 2, 'still hidden: keep waiting');
  doc.hidden = false;
  listeners.visibilitychange();
  assert.equal(WS.all.length, 3, 'visible: at once');
  void ws;
  c.disconnect();
  assert.equal(listeners.online, undefined);
  assert.equal(c.state, 'disconnected');
});

test('disconnect(): closes, stops timers and fails queued publishes', async () => {
  const { c, clock, WS, ws } = live();
  ws.drop(1006);
  const p = c.publish('chat', { text: 'hi' });
  c.disconnect();
  await assert.rejects(p, (e) => e.code === 503);
  clock.advance(120000);
  assert.equal(WS.all.length, 1);
  c.connect();
  assert.equal(WS.all.length, 2);
});
