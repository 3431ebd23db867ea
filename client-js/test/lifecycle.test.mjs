// A page left open for days: backoff after server disconnects, the
// application stopping the client from inside its own handlers, and the
// channel set changing while an upgrade probe is failing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../.build/index.js';
import { setup, collect, hello, msg } from './fakes.mjs';

const disconnect = (code, reason, reconnect) => ({ type: 'disconnect', code, reason, reconnect });

test('backoff: server disconnects of connections that were stable do not grow the delay', () => {
  // random 1: each delay is its ceiling, 1000 ms after the first drop.
  const { c, clock, WS } = setup(Client, { random: () => 1 });
  collect(c, 'news');
  c.connect();
  for (let i = 0; i < 6; i++) {
    const ws = WS.all[i];
    ws.recv(hello('ws', 0));
    clock.advance(3600000); // an hour of good service
    ws.recv(disconnect(i % 2 ? 3006 : 3002, 'x', true));
    clock.advance(999);
    assert.equal(WS.all.length, i + 1);
    clock.advance(1);
    assert.equal(WS.all.length, i + 2, `reconnect ${i + 1} after 1 s, as the first`);
  }
});

test('backoff: quick server disconnects still grow it', () => {
  const { c, clock, WS } = setup(Client, { random: () => 1 });
  c.connect();
  const waits = [];
  for (let i = 0; i < 4; i++) {
    WS.all[i].recv(hello('ws', 0), disconnect(3006, 'internal error', true));
    const t0 = clock.now();
    while (WS.all.length === i + 1) clock.advance(50);
    waits.push(clock.now() - t0);
  }
  assert.deepEqual(waits, [1000, 2000, 4000, 8000]);
});

test('disconnect() from a disconnect handler: the client stays disconnected', () => {
  const { c, clock, WS, seen } = setup(Client);
  c.on('disconnect', () => c.disconnect());
  c.connect();
  WS.all[0].recv(hello(), disconnect(3005, 'stale connection', true));
  assert.equal(c.state, 'disconnected');
  assert.equal(seen.states.at(-1), 'disconnected');
  clock.advance(120000);
  assert.equal(WS.all.length, 1);
});

test('subscribe while an upgrade probe finds its transport missing does not throw', () => {
  // EventSource exists but throws (a CSP or an embedding that forbids it):
  // the client settles on long-poll and probes sse in the background.
  let tried = 0;
  const { c, clock, XHR } = setup(Client, {
    transports: ['sse', 'poll'],
    EventSource: class {
      constructor() {
        tried++;
        throw new Error('blocked');
      }
    },
  });
  const news = collect(c, 'news');
  c.connect();
  clock.tick();
  XHR.last().respond(200, { messages: [hello('poll'), { type: 'subscribed', channel: 'news', epoch: 'E', offset: 0 }], cursor: 'C0' });
  assert.equal(c.transport, 'poll');
  assert.equal(tried, 1);
  for (const ms of [20000, 20000, 19999]) {
    clock.advance(ms);
    if (ms === 20000) XHR.last().respond(200, { messages: [], cursor: 'C0' });
  }
  // Run the probe timer alone: the probe's failure is due on the next tick,
  // and the application subscribes before it.
  clock.q.sort((a, b) => a.at - b.at || a.id - b.id);
  const probe = clock.q.shift();
  clock.t = probe.at;
  probe.fn();
  assert.equal(tried, 2, 'the probe ran');
  const chat = collect(c, 'chat');
  clock.tick();
  XHR.last().respond(200, { messages: [msg('news', 1)], cursor: 'C1' });
  const restart = XHR.all.find((x) => x.url.includes('channel=chat'));
  assert.ok(restart, 'the new channel set is polled');
  restart.respond(200, { messages: [hello('poll'), { type: 'subscribed', channel: 'chat', epoch: 'C', offset: 0 }], cursor: 'C2' });
  XHR.last().respond(200, { messages: [msg('chat', 1), msg('news', 2)], cursor: 'C3' });
  assert.deepEqual(news.data, [1, 2]);
  assert.deepEqual(chat.data, [1]);
});

test('disconnect() and connect() from a disconnect handler: one live connection, the handler\'s', () => {
  const { c, clock, WS } = setup(Client);
  collect(c, 'news');
  let once = true;
  c.on('disconnect', () => {
    if (once) {
      once = false;
      c.disconnect();
      c.connect();
    }
  });
  c.connect();
  WS.all[0].recv(hello(), { type: 'subscribed', id: 1, channel: 'news', epoch: 'E', offset: 0 });
  WS.all[0].recv(disconnect(3001, 'shutdown', true));
  clock.advance(3000);
  const live = WS.all.filter((w) => !w.closed);
  assert.equal(live.length, 1);
  assert.equal(WS.all.length, 2);
  live[0].recv(hello());
  assert.equal(c.state, 'connected');
});

test('connect() from the error handler of a terminal disconnect connects again', () => {
  const { c, clock, WS, seen } = setup(Client);
  let once = true;
  c.on('error', () => {
    if (once) {
      once = false;
      c.connect();
    }
  });
  c.connect();
  WS.all[0].recv(hello(), disconnect(3504, 'disconnected by the server', false));
  assert.equal(seen.errors.length, 1);
  assert.equal(seen.errors[0].code, 3504);
  assert.equal(c.state, 'connecting');
  clock.tick();
  assert.equal(WS.all.length, 2);
  WS.all[1].recv(hello());
  assert.equal(c.state, 'connected');
});

test('reconnect: more than 100 subscriptions go out in frames of at most 100 commands', () => {
  // The server refuses a frame of more than 100 commands whole (400), and
  // maxChannels is 128 by default.
  const { c, clock, WS } = setup(Client);
  const names = Array.from({ length: 128 }, (_, i) => 'ch' + i);
  c.connect();
  const frames = (ws) => {
    const f = [];
    const send = ws.send.bind(ws);
    ws.send = (s) => {
      f.push(s.split('\n').length);
      send(s);
    };
    return f;
  };
  const f0 = frames(WS.all[0]);
  WS.all[0].recv(hello());
  for (const n of names) collect(c, n);
  assert.equal(f0.length, 128, 'one frame per subscribe while connected');
  WS.all[0].drop(1006);
  clock.advance(2000);
  const ws = WS.all[1];
  const f1 = frames(ws);
  ws.recv(hello());
  assert.deepEqual(f1, [100, 28]);
  assert.deepEqual(ws.sent.map((s) => s.channel), names);
});

test('disconnect() and connect() from a state handler: one live connection', () => {
  for (const when of ['connecting', 'connected']) {
    const { c, clock, WS } = setup(Client);
    collect(c, 'news');
    c.connect();
    WS.all[0].recv(hello());
    let once = true;
    c.on('state', (s) => {
      if (s === when && once) {
        once = false;
        c.disconnect();
        c.connect();
      }
    });
    WS.all[0].drop(1006); // 'connecting', then a new WebSocket after the backoff
    clock.advance(3000);
    assert.equal(WS.all.filter((w) => !w.closed).length, 1, `${when}: ${WS.all.length} opened`);
    WS.all.at(-1).recv(hello()); // 'connected'
    if (when === 'connected') {
      assert.ok(WS.all[1].closed);
      assert.deepEqual(WS.all[1].sent, [], 'nothing sent on the connection the handler closed');
      assert.equal(WS.all.length, 3);
      assert.equal(c.state, 'connecting');
      WS.all[2].recv(hello());
    }
    const live = WS.all.filter((w) => !w.closed);
    assert.equal(live.length, 1);
    assert.equal(c.state, 'connected', when);
    assert.deepEqual(live[0].sent.map((s) => s.channel), ['news']);
  }
});

test('reconnect: subscribes with their tokens go in messages no larger than the hello\'s maxMessageBytes', () => {
  // A larger message ends the connection with 3501, which is terminal.
  const { c, clock, WS, seen } = setup(Client);
  const token = 't'.repeat(300);
  const names = Array.from({ length: 12 }, (_, i) => 'orders:' + i);
  for (const n of names) collect(c, n, { token });
  c.connect();
  const ws = WS.all[0];
  const frames = [];
  const send = ws.send.bind(ws);
  ws.send = (s) => {
    frames.push(s);
    send(s);
  };
  ws.recv({ ...hello(), limits: { maxMessageBytes: 1000, maxChannels: 128, maxQueueBytes: 2097152 } });
  assert.ok(frames.length >= 4, `${frames.length} messages`);
  for (const f of frames) assert.ok(Buffer.byteLength(f) <= 1000, `a message of ${Buffer.byteLength(f)} bytes`);
  assert.deepEqual(ws.sent.map((s) => [s.channel, s.token]), names.map((n) => [n, token]));
  assert.deepEqual(seen.errors, []);
  clock.tick();
});
