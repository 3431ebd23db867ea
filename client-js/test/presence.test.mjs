import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Codes, UnsubscribedByServer } from '../.build/index.js';
import { setup, hello, msg } from './fakes.mjs';

function room(opts) {
  const env = setup(Client, opts);
  const got = { joins: [], leaves: [], unsubscribed: [], data: [] };
  const sub = env.c.subscribe('room:1', {
    message: (d) => got.data.push(d),
    join: (i) => got.joins.push([i.client, i.user]),
    leave: (i) => got.leaves.push([i.client, i.user]),
    unsubscribed: (u) => got.unsubscribed.push([u.channel, u.code, u.reason]),
  });
  env.c.connect();
  const ws = env.WS.all[0];
  ws.recv(hello());
  return { ...env, ws, sub, got };
}

test('join and leave frames reach the subscription, and do not move its position', () => {
  const { ws, sub, got } = room();
  ws.recv({ type: 'subscribed', id: 1, channel: 'room:1', epoch: 'E', offset: 3 });
  ws.recv(
    { type: 'join', channel: 'room:1', client: 'c3', user: 'carol' },
    { type: 'join', channel: 'other', client: 'c4', user: 'dan' },
    { type: 'leave', channel: 'room:1', client: 'c3', user: 'carol' },
  );
  assert.deepEqual(got.joins, [['c3', 'carol']]);
  assert.deepEqual(got.leaves, [['c3', 'carol']]);
  assert.deepEqual(sub.position(), { epoch: 'E', offset: 3 });
  ws.recv(msg('room:1', 4));
  assert.deepEqual(got.data, [4]);
});

test('presence and presenceStats ask over the WebSocket and resolve with the reply', async () => {
  const { ws, sub } = room();
  const p = sub.presence();
  const s = sub.presenceStats();
  const asked = ws.sent.filter((c) => c.type === 'presence' || c.type === 'presence_stats');
  assert.deepEqual(
    asked.map((c) => [c.type, c.channel]),
    [
      ['presence', 'room:1'],
      ['presence_stats', 'room:1'],
    ],
  );
  ws.recv({ type: 'reply', id: asked[0].id, channel: 'room:1', clients: [{ client: 'c1', user: 'alice' }] });
  ws.recv({ type: 'reply', id: asked[1].id, channel: 'room:1', clients: 1, users: 1 });
  assert.deepEqual(await p, [{ client: 'c1', user: 'alice' }]);
  const st = await s;
  assert.equal(st.clients, 1);
  assert.equal(st.users, 1);
  const e = sub.presence();
  const id = ws.sent[ws.sent.length - 1].id;
  ws.recv({ type: 'error', id, code: 403, reason: 'room:1: presence is not enabled in this namespace' });
  await assert.rejects(e, (err) => err.code === 403);
});

test('presence without a WebSocket fails with 503 (callback form)', () => {
  const { c, ES } = setup(Client, { transports: ['sse'] });
  const sub = c.subscribe('room:1', () => {});
  c.connect();
  ES.all[0].emit(hello('sse'));
  let got;
  sub.presence((err, r) => (got = [err && err.code, r]));
  assert.deepEqual(got, [503, undefined]);
});

test('unsubscribed by the server: the handler hears the code and the client does not subscribe again', () => {
  const { c, ws, WS, got, clock } = room();
  ws.recv({ type: 'unsubscribed', channel: 'room:1', code: 2000, reason: 'unsubscribed by the server' });
  assert.deepEqual(got.unsubscribed, [['room:1', UnsubscribedByServer, 'unsubscribed by the server']]);
  assert.equal(c.subscription('room:1'), undefined);
  ws.drop(1006);
  clock.advance(30000);
  const next = WS.all[WS.all.length - 1];
  next.recv(hello());
  assert.equal(next.sent.filter((m) => m.type === 'subscribe').length, 0, 'resubscribed after the reconnect');
});

test('3504 disconnected by the server is terminal', () => {
  const { c, ws, WS, clock, seen } = room();
  ws.recv({ type: 'disconnect', code: 3504, reason: 'disconnected by the server', reconnect: false });
  assert.equal(Codes.DisconnectedByServer, 3504);
  assert.deepEqual(seen.disconnects, [{ code: 3504, reason: 'disconnected by the server', reconnect: false }]);
  assert.equal(seen.errors[0].code, 3504);
  clock.advance(60000);
  assert.equal(WS.all.length, 1);
  assert.equal(c.state, 'disconnected');
});

// A long-poll client is one presence entry across its polls: every poll
// after the first sends back the session id of the first poll's hello.
for (const transport of ['poll', 'jsonp']) {
  test(`${transport}: later polls send the first hello's session id as client=`, () => {
    const { c, XHR, jsonp } = setup(Client, { transports: [transport] });
    c.subscribe('room:1', () => {});
    c.connect();
    const reqs = transport === 'poll' ? XHR.all : jsonp;
    const answer = (i, body) => (transport === 'poll' ? reqs[i].respond(200, body) : reqs[i].done(null, body));
    const client = (i) => new URL(reqs[i].url, 'http://x').searchParams.get('client');
    assert.equal(client(0), null, 'the first poll has no id yet');
    answer(0, { messages: [{ ...hello(transport), session: 'Ab-_9z', client: 'Lst-1' }, { type: 'subscribed', channel: 'room:1', epoch: 'E', offset: 0 }], cursor: 'C1' });
    assert.equal(client(1), 'Ab-_9z', 'the claim is the session, not the listed id');
    assert.equal(c.presenceId, 'Lst-1', 'presence lists the poller under the hello\'s client');
    assert.equal(c.session, 'Ab-_9z');
    answer(1, { messages: [msg('room:1', 1)], cursor: 'C2' });
    assert.equal(client(2), 'Ab-_9z', 'kept for as long as the client polls');
  });
}
