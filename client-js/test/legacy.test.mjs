import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import * as acorn from 'acorn';
import { Clock, xhrClass, wsClass, hello, msg, query } from './fakes.mjs';

const legacy = readFileSync(new URL('../dist/waterspout.legacy.js', import.meta.url), 'utf8');
const script = readFileSync(new URL('../dist/waterspout.js', import.meta.url), 'utf8');

test('legacy bundle parses as ES5', () => {
  assert.doesNotThrow(() => acorn.parse(legacy, { ecmaVersion: 5, sourceType: 'script' }));
});

test('legacy bundle never names fetch, WebSocket or EventSource', () => {
  for (const name of ['fetch', 'WebSocket', 'EventSource']) assert.ok(!legacy.includes(name), name);
});

test('legacy bundle connects by XHR long-poll in a context without Promise, fetch, WebSocket, EventSource', () => {
  const clock = new Clock();
  const XHR = xhrClass();
  const ctx = vm.createContext({ XMLHttpRequest: XHR, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout });
  vm.runInContext('delete this.Promise;', ctx);
  for (const g of ['Promise', 'fetch', 'WebSocket', 'EventSource', 'window', 'document', 'localStorage']) {
    assert.equal(vm.runInContext(`typeof ${g}`, ctx), 'undefined', g);
  }
  vm.runInContext(legacy, ctx);
  const out = vm.runInContext(
    `var got = [], states = [], published = [];
     var ws = new WaterSpout.Client('https://push.example.com');
     ws.on('state', function (s) { states.push(s); });
     var sub = ws.subscribe('orders:42', { message: function (d, c) { got.push([d, c.offset]); } });
     ws.connect();
     ({ got: got, states: states, published: published, ws: ws, ret: null })`,
    ctx,
  );
  assert.equal(XHR.all.length, 1);
  const q = query(XHR.all[0].url);
  assert.equal(q.path, '/connect/poll');
  assert.deepEqual(q.channels, ['orders:42']);
  XHR.all[0].respond(200, { messages: [hello('poll'), { type: 'subscribed', channel: 'orders:42', epoch: 'E', offset: 0 }], cursor: 'C0' });
  assert.equal(out.ws.state, 'connected');
  assert.equal(out.ws.transport, 'poll');
  assert.equal(query(XHR.all[1].url).cursor, 'C0');
  XHR.all[1].respond(200, { messages: [msg('orders:42', 1, 'E', { n: 1 }), msg('orders:42', 2, 'E', { n: 2 })], cursor: 'C2' });
  XHR.all[2].respond(200, { messages: [msg('orders:42', 2, 'E', { n: 2 }), msg('orders:42', 3, 'E', { n: 3 })], cursor: 'C3' });
  assert.equal(JSON.stringify(out.got), JSON.stringify([[{ n: 1 }, 1], [{ n: 2 }, 2], [{ n: 3 }, 3]]));
  // publish without Promise: returns nothing, takes a callback
  const ret = vm.runInContext(`ws.publish('chat', { text: 'hi' }, function (e, r) { published.push([e, r]); })`, ctx);
  assert.equal(ret, undefined);
  const pub = XHR.all.find((x) => x.url.endsWith('/connect/publish'));
  pub.respond(200, { channel: 'chat', offset: 1, epoch: 'E' });
  assert.equal(JSON.stringify(out.published), JSON.stringify([[null, { channel: 'chat', offset: 1, epoch: 'E' }]]));
  assert.equal(vm.runInContext(`ws.publish('chat', 1)`, ctx), undefined);
  // a dropped poll reconnects with the cursor built from positions
  XHR.open().find((x) => x.url.includes('/connect/poll')).respond(502, '');
  const open = XHR.open().filter((x) => x.url.includes('/connect/poll'));
  assert.equal(open.length, 0);
  clock.advance(1000);
  const again = XHR.open().filter((x) => x.url.includes('/connect/poll'));
  assert.equal(again.length, 1);
  assert.equal(out.states.join(','), 'connecting,connected,connecting');
});

test('script-tag bundle exposes the global WaterSpout', () => {
  const clock = new Clock();
  const WS = wsClass();
  const ctx = vm.createContext({ WebSocket: WS, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout });
  vm.runInContext(script, ctx);
  const c = vm.runInContext(`var c = new WaterSpout.Client('https://push.example.com'); c.subscribe('news', function () {}); c.connect(); c`, ctx);
  assert.equal(WS.all.length, 1);
  WS.all[0].recv(hello());
  assert.equal(c.state, 'connected');
  assert.equal(vm.runInContext('WaterSpout.encodeCursor({})', ctx), 'AQA');
  assert.equal(vm.runInContext('WaterSpout.Codes.Shutdown', ctx), 3001);
});

test('ES module bundle exports the API', async () => {
  const m = await import('../dist/waterspout.mjs');
  assert.equal(typeof m.Client, 'function');
  assert.equal(m.encodeCursor({ news: { epoch: 'e1', offset: 5 } }), 'AQEEbmV3cwJlMQU');
  assert.equal(m.Codes.InvalidToken, 3502);
});
