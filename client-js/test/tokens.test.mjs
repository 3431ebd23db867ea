// Token refresh across transports and over a long life: a refusal read from
// a long-poll or JSONP answer, a fresh token refused again, and a second
// invalid token days after the first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../.build/index.js';
import { setup, collect, hello, msg, query } from './fakes.mjs';

const disconnect = (code, reason, reconnect) => ({ type: 'disconnect', code, reason, reconnect });
const flush = async () => {
  for (let i = 0; i < 4; i++) await Promise.resolve();
};

// onPoll puts a getToken client on long-poll (the WebSocket and SSE blocked
// on the way, as behind some proxies), news at offset 1.
function onPoll(transports, getToken) {
  const env = setup(Client, { transports, token: 'old', getToken });
  const got = collect(env.c, 'news');
  env.c.connect();
  return { ...env, got };
}

test('poll: a continuing poll refused with 401 token expired gets a fresh token, as 3007 does', () => {
  let n = 0;
  const { c, clock, XHR, got, seen } = onPoll(['poll'], (cb) => cb(null, 'tok' + ++n));
  XHR.all[0].respond(200, { messages: [hello('poll'), { type: 'subscribed', channel: 'news', epoch: 'E', offset: 0 }], cursor: 'C0' });
  XHR.last().respond(200, { messages: [msg('news', 1)], cursor: 'C1' });
  // The token expired while the laptop slept: the next poll is refused.
  XHR.last().respond(401, { error: { code: 401, reason: 'token expired' } });
  clock.tick();
  assert.equal(n, 1, 'getToken was called');
  const q = query(XHR.last().url);
  assert.equal(q.token, 'tok1', 'the next poll carries the fresh token');
  assert.deepEqual(seen.disconnects, [{ code: 3007, reason: 'token expired', reconnect: true }]);
  XHR.last().respond(200, { messages: [hello('poll'), { type: 'subscribed', channel: 'news', epoch: 'E', offset: 5 }], cursor: 'C5' });
  XHR.last().respond(200, { messages: [msg('news', 2)], cursor: 'C2' });
  assert.deepEqual(got.data, [1, 2]);
  assert.equal(c.state, 'connected');
  assert.deepEqual(seen.errors, []);
});

test('jsonp: a first poll refused with 401 invalid token gets one fresh token, then stops as 3502 does', () => {
  let n = 0;
  const { c, clock, jsonp, seen } = onPoll(['jsonp'], (cb) => cb(null, 'tok' + ++n));
  jsonp[0].done(null, { error: { code: 401, reason: 'invalid token' } });
  clock.tick();
  assert.equal(n, 1);
  assert.equal(query(jsonp[1].url).token, 'tok1');
  jsonp[1].done(null, { error: { code: 401, reason: 'invalid token' } });
  clock.advance(120000);
  assert.equal(jsonp.length, 2, 'no more requests with a token the server calls invalid');
  assert.equal(c.state, 'disconnected');
  assert.equal(seen.errors.at(-1).code, 3502);
});

test('sse then poll: an expired token an EventSource cannot read is refreshed once poll reads it', () => {
  let n = 0;
  const { clock, ES, XHR } = onPoll(['sse', 'poll'], (cb) => cb(null, 'tok' + ++n));
  ES.all[0].fail(); // 401 unreadable
  clock.tick();
  XHR.all[0].respond(401, { error: { code: 401, reason: 'token expired' } });
  clock.tick();
  assert.equal(n, 1);
  assert.equal(query(XHR.last().url).token, 'tok1');
});

test('3007: a fresh token refused again is fetched again only after a backoff, not in a tight loop', () => {
  // An issuer whose clock lags the server's hands out tokens that are
  // already expired: each connect is refused with 3007 at once.
  let n = 0;
  const env = setup(Client, { token: 'old', getToken: (cb) => cb(null, 'tok' + ++n), random: () => 0 });
  env.c.connect();
  env.WS.all[0].recv(disconnect(3007, 'token expired', true));
  assert.equal(env.WS.all.length, 2, 'the first refresh reconnects at once');
  for (let i = 1; i <= 5; i++) {
    env.WS.all[i].recv(disconnect(3007, 'token expired', true));
    assert.equal(env.WS.all.length, i + 1, 'refused again: not at once');
    env.clock.advance(499);
    assert.equal(env.WS.all.length, i + 1, 'not before the backoff floor');
    env.clock.advance(1);
    assert.equal(env.WS.all.length, i + 2);
  }
  // A connection that is accepted ends the loop: its own expiry later refreshes at once.
  const ws = env.WS.all.at(-1);
  ws.recv(hello('ws', 0));
  env.clock.advance(3600000);
  ws.recv(disconnect(3007, 'token expired', true));
  assert.equal(env.WS.all.length, 8);
});

test('3502: a second invalid token, days after the first, is refreshed again', () => {
  let n = 0;
  const { c, clock, WS } = setup(Client, { token: 'old', getToken: (cb) => cb(null, 'tok' + ++n) });
  c.connect();
  WS.all[0].recv(disconnect(3502, 'invalid token', false));
  assert.equal(query(WS.all[1].url).token, 'tok1');
  WS.all[1].recv(hello('ws', 0));
  clock.advance(3 * 86400000);
  // The signing key was rotated; the network blips and the token is now invalid.
  WS.all[1].drop(1006);
  clock.advance(1000);
  WS.all[2].recv(disconnect(3502, 'invalid token', false));
  assert.equal(c.state, 'connecting');
  assert.equal(WS.all.length, 4);
  assert.equal(query(WS.all[3].url).token, 'tok2');
});

test('getToken rejects and the error handler disconnects: the client stays disconnected', async () => {
  const { c, clock, WS, seen } = setup(Client, { getToken: () => Promise.reject(new Error('logged out')) });
  c.on('error', () => c.disconnect());
  c.connect();
  await flush();
  assert.equal(seen.errors.length, 1);
  assert.equal(c.state, 'disconnected');
  assert.equal(seen.states.at(-1), 'disconnected');
  clock.advance(120000);
  assert.equal(WS.all.length, 0);
});
