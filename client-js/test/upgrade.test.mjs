import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, decodeCursor } from '../.build/index.js';
import { setup, collect, hello, msg, query } from './fakes.mjs';

// Puts a client on long-poll after the websocket failed, with news at offset 3.
function onPoll(opts) {
  const env = setup(Client, { transports: ['websocket', 'sse', 'poll'], ...opts });
  const got = collect(env.c, 'news');
  env.c.connect();
  env.clock.advance(5000); // websocket: no hello
  env.clock.tick();
  env.ES.all[0].fail(); // sse: closed before open
  env.clock.tick();
  env.XHR.last().respond(200, { messages: [hello('poll'), { type: 'subscribed', channel: 'news', epoch: 'E', offset: 0 }], cursor: 'C0' });
  env.XHR.last().respond(200, { messages: [msg('news', 1), msg('news', 2), msg('news', 3)], cursor: 'C3' });
  assert.equal(env.c.transport, 'poll');
  // wait lets time pass while the server answers held polls every 20 s, as a real one does
  const wait = (ms) => {
    while (ms > 0) {
      const step = Math.min(ms, 20000);
      env.clock.advance(step);
      ms -= step;
      if (step === 20000) for (const x of env.XHR.open()) x.respond(200, { messages: [], cursor: 'same' });
    }
  };
  return { ...env, got, wait };
}

test('upgrade: probes websocket in the background and switches without loss or repeat', () => {
  const { c, clock, WS, XHR, got, seen, storage, wait } = onPoll();
  assert.equal(WS.all.length, 1);
  wait(59999); // 60 s * (0.75 + 0.5 * 0.5)
  assert.equal(WS.all.length, 1);
  clock.advance(1);
  assert.equal(WS.all.length, 2, 'probe opened');
  const probe = WS.all[1];
  // the old transport keeps delivering while the probe opens
  XHR.last().respond(200, { messages: [msg('news', 4)], cursor: 'C4' });
  const held = XHR.last();
  probe.recv(hello());
  assert.ok(held.aborted, 'old transport closed once the new one said hello');
  assert.deepEqual(probe.sent, [{ type: 'subscribe', id: 1, channel: 'news', since: { epoch: 'E', offset: 4 } }]);
  // a server that replays a little too much: the repeats are dropped
  probe.recv({ type: 'subscribed', id: 1, channel: 'news', epoch: 'E', offset: 4, recovered: true }, msg('news', 3), msg('news', 4), msg('news', 5), msg('news', 6));
  assert.deepEqual(got.data, [1, 2, 3, 4, 5, 6]);
  assert.equal(c.transport, 'websocket');
  assert.deepEqual(seen.transports, ['poll', 'websocket']);
  assert.equal(c.state, 'connected');
  assert.ok(!seen.states.slice(seen.states.indexOf('connected')).includes('connecting'), 'no visible reconnect');
  assert.equal(JSON.parse(storage.m['waterspout:https://push.example.com']).t, 'websocket');
  assert.equal(XHR.open().length, 0);
});

test('upgrade: a failed probe leaves the fallback alone and the next probe tries the next better transport', () => {
  const { c, clock, WS, ES, XHR, got, wait } = onPoll();
  wait(60000);
  assert.equal(WS.all.length, 2);
  clock.advance(5000); // the probe gets no hello either
  assert.ok(WS.all[1].closed);
  assert.equal(c.transport, 'poll');
  assert.equal(c.state, 'connected');
  XHR.last().respond(200, { messages: [msg('news', 4)], cursor: 'C4' });
  wait(60000);
  assert.equal(ES.all.length, 2, 'next probe: sse');
  const es = ES.all[1];
  const q = query(es.url);
  assert.deepEqual({ ...decodeCursor(q.cursor) }, { news: { epoch: 'E', offset: 4 } });
  XHR.last().respond(200, { messages: [msg('news', 5)], cursor: 'C5' });
  es.emit(hello('sse'), msg('news', 5), msg('news', 6));
  assert.equal(c.transport, 'sse');
  assert.deepEqual(got.data, [1, 2, 3, 4, 5, 6]);
  assert.equal(XHR.open().length, 0);
  // from sse it keeps probing websocket
  for (let i = 0; i < 3; i++) {
    clock.advance(20000);
    es.emit({ type: 'ping' });
  }
  assert.equal(WS.all.length, 3);
});

test('remember: the transport that worked is tried first, until it expires', () => {
  const { storage, clock } = onPoll();
  const saved = JSON.parse(storage.m['waterspout:https://push.example.com']);
  assert.equal(saved.t, 'poll');
  assert.equal(saved.x, clock.now() + 86400000);
  const again = setup(Client, { transports: ['websocket', 'sse', 'poll'], storage, now: () => clock.now() + 1000 });
  again.c.connect();
  assert.equal(again.WS.all.length, 0);
  assert.equal(again.XHR.all.length, 1, 'starts on poll');
  const later = setup(Client, { transports: ['websocket', 'sse', 'poll'], storage, now: () => clock.now() + 86400001 });
  later.c.connect();
  assert.equal(later.WS.all.length, 1, 'expired: websocket first');
  const broken = setup(Client, {
    storage: {
      getItem() {
        throw new Error('SecurityError');
      },
      setItem() {
        throw new Error('QuotaExceeded');
      },
    },
  });
  broken.c.connect();
  broken.WS.all[0].recv(hello());
  assert.equal(broken.c.state, 'connected');
});
