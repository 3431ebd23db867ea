import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { encodeCursor, decodeCursor } from '../.build/cursor.js';
import { Codes, canReconnect } from '../.build/codes.js';
import { backoff } from '../.build/backoff.js';

const vectors = [
  { positions: {}, hex: '0100', cursor: 'AQA' },
  { positions: { news: { epoch: 'e1', offset: 5 } }, hex: '0101046e65777302653105', cursor: 'AQEEbmV3cwJlMQU' },
  {
    positions: { b: { epoch: 'E', offset: 0 }, a: { epoch: 'E', offset: 300 } },
    hex: '010201610145ac020162014500',
    cursor: 'AQIBYQFFrAIBYgFFAA',
  },
];

test('cursor: the Go test vectors', () => {
  for (const v of vectors) {
    assert.equal(Buffer.from(v.hex, 'hex').toString('base64url'), v.cursor, 'vector bytes vs base64url');
    assert.equal(encodeCursor(v.positions), v.cursor);
    assert.deepEqual({ ...decodeCursor(v.cursor) }, v.positions);
  }
});

test('cursor: round trip, large offsets, many channels, sorted by name', () => {
  const p = {};
  const offsets = [0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1];
  offsets.forEach((o, i) => (p[`ch:${9 - i}#x.y@z=`] = { epoch: 'Ep_-' + i, offset: o }));
  const c = encodeCursor(p);
  assert.match(c, /^[A-Za-z0-9_-]+$/);
  assert.deepEqual({ ...decodeCursor(c) }, p);
  // bytes agree with an independent encoder built on Buffer
  const names = Object.keys(p).sort();
  const bytes = [1, names.length];
  const uv = (n) => {
    while (n >= 128) {
      bytes.push((n % 128) + 128);
      n = Math.floor(n / 128);
    }
    bytes.push(n);
  };
  for (const n of names) {
    uv(n.length);
    bytes.push(...Buffer.from(n));
    uv(p[n].epoch.length);
    bytes.push(...Buffer.from(p[n].epoch));
    uv(p[n].offset);
  }
  assert.equal(c, Buffer.from(bytes).toString('base64url'));
});

test('cursor: malformed input throws', () => {
  for (const bad of ['', 'AgA', 'AQ', 'AQE', 'AQEEbmV3cwJlMQ', 'AQA=', 'AQA!', 'AQAA']) {
    assert.throws(() => decodeCursor(bad), /malformed cursor/, bad);
  }
});

test('codes: mirror session/disconnect.go', (t) => {
  const go = new URL('../../session/disconnect.go', import.meta.url);
  if (!existsSync(go)) return t.skip('session/disconnect.go not present');
  const src = readFileSync(go, 'utf8');
  const found = [...src.matchAll(/Disconnect(\w+)\s*=\s*Disconnect\{(\d+),\s*"[^"]*",\s*(true|false)\}/g)];
  assert.ok(found.length >= 12);
  const ours = Object.values(Codes).sort();
  assert.deepEqual(found.map((m) => Number(m[2])).sort(), ours);
  for (const m of found) assert.equal(canReconnect(Number(m[2])), m[3] === 'true', m[1]);
});

test('codes: ranges decide reconnect', () => {
  assert.equal(canReconnect(3400), true);
  assert.equal(canReconnect(3999), false);
  assert.equal(canReconnect(4001), false);
  assert.equal(canReconnect(4001, true), true);
  assert.equal(canReconnect(3502, false), false);
});

test('backoff: full jitter within floor and ceiling', () => {
  for (let n = 0; n < 60; n++) {
    for (const r of [0, 0.25, 0.5, 0.999999, 1]) {
      const d = backoff(n, 500, 20000, () => r);
      assert.ok(d >= 500 && d <= 20000, `n=${n} r=${r} d=${d}`);
    }
  }
  assert.equal(backoff(0, 500, 20000, () => 1), 1000);
  assert.equal(backoff(0, 500, 20000, () => 0), 500);
  assert.equal(backoff(3, 500, 20000, () => 1), 8000);
  assert.equal(backoff(10, 500, 20000, () => 1), 20000);
  assert.equal(backoff(1000, 500, 20000, () => 0.5), 10250);
});

test('cursor: a channel named __proto__ (or constructor) decodes like any other', () => {
  const p = Object.create(null);
  p.__proto__ = { epoch: 'E', offset: 3 };
  p.constructor = { epoch: 'E', offset: 2 };
  p.news = { epoch: 'E', offset: 1 };
  const d = decodeCursor(encodeCursor(p));
  assert.deepEqual(Object.keys(d).sort(), ['__proto__', 'constructor', 'news']);
  assert.deepEqual({ ...d.__proto__ }, { epoch: 'E', offset: 3 });
  assert.deepEqual({ ...d.constructor }, { epoch: 'E', offset: 2 });
  assert.equal(decodeCursor(encodeCursor({ news: { epoch: 'E', offset: 1 } })).toString, undefined, 'no prototype');
});
