// Scenario 8: clients nobody here wrote, from npm, each receiving a
// numbered stream exactly once and in order: `eventsource` over SSE, `ws`
// over WebSocket, `sockjs-client` (in Node) over SockJS. (A Go client,
// r3labs/sse, is covered by the Go SSE tests.)

import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import SockJS from 'sockjs-client';
import WebSocket from 'ws';

import { scenario } from '../lib/harness.mjs';
import { assertSequence, publishNumbered } from '../lib/stream.mjs';

const N = 200;

/**
 * Recorder keeps every frame a client received, whichever transport
 * delivered it; a transport message may hold several JSON objects separated
 * by "\n" (WebSocket and SockJS batching).
 */
class Recorder {
  constructor() {
    this.frames = [];
    this.errors = [];
  }

  feed(text) {
    for (const line of String(text).split('\n')) {
      if (!line) continue;
      try {
        this.frames.push(JSON.parse(line));
      } catch {
        this.errors.push(`not JSON: ${line}`);
      }
    }
    if (this.onHello && this.of('hello').length) {
      const subscribe = this.onHello;
      this.onHello = null;
      subscribe();
    }
  }

  /** subscribeOnHello has feed send the subscribe command for channel, once, after hello. */
  subscribeOnHello(channel, send) {
    this.onHello = () => send(JSON.stringify({ type: 'subscribe', id: 1, channel }));
  }

  of(type) {
    return this.frames.filter((f) => f.type === type);
  }

  summary() {
    const counts = {};
    for (const f of this.frames) counts[f.type] = (counts[f.type] || 0) + 1;
    return `frames ${JSON.stringify(counts)}, errors ${JSON.stringify(this.errors)}, last ${JSON.stringify(this.frames.slice(-3))}`;
  }
}

/**
 * receiveStream starts a server and opens a client on it with
 * open(server, rec, channel), which feeds rec; it publishes 1..N on channel
 * once rec has a subscription and checks what rec got, then runs the
 * client's own check. The client is closed in the end.
 */
async function receiveStream(h, channel, transport, open) {
  const server = await h.startServer();
  const rec = new Recorder();
  const client = open(server, rec, channel);
  try {
    await receiveAndCheck(h, server, rec, channel, transport);
    client.check();
  } finally {
    client.close();
  }
}

async function receiveAndCheck(h, server, rec, channel, transport) {
  await h.waitFor(`hello and subscribed over ${transport}`, () => rec.of('hello').length && rec.of('subscribed').length, {
    detail: () => rec.summary(),
  });
  const [hello] = rec.of('hello');
  assert.equal(hello.transport, transport);
  assert.equal(rec.frames[0].type, 'hello', 'hello comes first');
  assert.equal(rec.of('subscribed')[0].channel, channel);

  await publishNumbered(server.url, channel, { to: N });
  await h.waitFor(`${N} messages over ${transport}`, () => rec.of('message').length >= N, { detail: () => rec.summary() });
  // Anything duplicated would arrive right behind.
  await new Promise((r) => setTimeout(r, 300));
  const msgs = rec.of('message');
  assertSequence(msgs.map((m) => m.data.n), N, `${transport} client`);
  assert.deepEqual(msgs.map((m) => m.offset), msgs.map((_, i) => i + 1), 'offsets 1..N');
  const { epoch } = rec.of('subscribed')[0];
  assert.ok(msgs.every((m) => m.channel === channel && m.epoch === epoch), 'every message is of the subscribed channel and epoch');
  assert.deepEqual(rec.errors, []);
  assert.deepEqual(rec.of('error'), []);
  assert.deepEqual(rec.of('disconnect'), []);
}

scenario('8 eventsource (npm) over SSE receives a numbered stream once and in order', (h) =>
  receiveStream(h, 'e2e-eventsource', 'sse', (server, rec, channel) => {
    const es = new EventSource(`${server.url}/connect/sse?channel=${channel}`);
    const errors = [];
    es.onmessage = (ev) => rec.feed(ev.data);
    es.onerror = (ev) => errors.push(ev.message || 'error');
    return {
      check() {
        assert.deepEqual(errors, [], 'no reconnect');
        // SSE's own resume: the last event id is the cursor.
        assert.ok(es.readyState === EventSource.OPEN);
      },
      close: () => es.close(),
    };
  }),
);

scenario('8 ws (npm) over WebSocket receives a numbered stream once and in order', (h) =>
  receiveStream(h, 'e2e-ws', 'ws', (server, rec, channel) => {
    const sock = new WebSocket(`ws://127.0.0.1:${server.port}/connect/ws`);
    rec.subscribeOnHello(channel, (cmd) => sock.send(cmd));
    sock.on('message', (data) => rec.feed(data.toString()));
    const closed = [];
    sock.on('close', (code, reason) => closed.push(`${code} ${reason}`));
    return {
      check() {
        assert.deepEqual(closed, []);
        assert.equal(rec.of('subscribed')[0].id, 1);
      },
      close: () => sock.terminate(),
    };
  }),
);

scenario('8 sockjs-client (npm) in Node over SockJS receives a numbered stream once and in order', (h) =>
  receiveStream(h, 'e2e-sockjs-node', 'sockjs', (server, rec, channel) => {
    const sock = new SockJS(`${server.url}/connect/sockjs`);
    rec.subscribeOnHello(channel, (cmd) => sock.send(cmd));
    sock.onmessage = (ev) => rec.feed(ev.data);
    const closed = [];
    sock.onclose = (ev) => closed.push(`${ev.code} ${ev.reason}`);
    return {
      check() {
        assert.deepEqual(closed, []);
        h.note(`sockjs-client transport in Node: ${sock.transport}`);
      },
      close: () => sock.close(),
    };
  }),
);
