// Publishing numbered streams through the backend API, and checking that a
// client saw one exactly once and in order.

import { AssertionError } from 'node:assert';
import { setTimeout as sleep } from 'node:timers/promises';

/** publish sends one publication through POST /api/publish and returns {channel, offset, epoch}. */
export async function publish(base, channel, data, { key, signal } = {}) {
  const body = { channel, data };
  if (key !== undefined) body.key = key;
  const res = await fetch(`${base}/api/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`publish to ${channel}: HTTP ${res.status}: ${text}`);
  return JSON.parse(text);
}

/**
 * publishNumbered publishes {n: from} … {n: to} (plus extra fields) in
 * order, one request at a time, so that offsets follow n. every(n) runs
 * after each publication (to cut a proxy at a chosen point); pauseMs
 * spreads the stream out in time.
 */
export async function publishNumbered(base, channel, { from = 1, to, extra = {}, pauseMs = 0, every, signal } = {}) {
  const results = [];
  for (let n = from; n <= to; n++) {
    results.push(await publish(base, channel, { n, ...extra }, { signal }));
    if (every) await every(n);
    if (pauseMs) await sleep(pauseMs, undefined, { signal });
  }
  return results;
}

function ranges(nums) {
  const out = [];
  for (const n of nums) {
    const last = out[out.length - 1];
    if (last && last[1] === n - 1) last[1] = n;
    else out.push([n, n]);
  }
  return out.map(([a, b]) => (a === b ? `${a}` : `${a}–${b}`)).join(', ');
}

/**
 * sequenceProblems compares what a client received (numbers, in arrival
 * order) with 1..count and describes every difference: missing numbers,
 * duplicates, numbers out of order, numbers never sent. It returns '' when
 * got is exactly 1..count.
 */
export function sequenceProblems(got, count) {
  const problems = [];
  const seen = new Map();
  const dups = [];
  const disorder = [];
  const unknown = [];
  got.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 1 || n > count) unknown.push(n);
    if (seen.has(n)) dups.push(n);
    seen.set(n, i);
    if (i > 0 && n < got[i - 1]) disorder.push(`${got[i - 1]}→${n} at #${i}`);
  });
  const missing = [];
  for (let n = 1; n <= count; n++) if (!seen.has(n)) missing.push(n);
  if (missing.length) problems.push(`missing ${missing.length}: ${ranges(missing)}`);
  if (dups.length) problems.push(`duplicated ${dups.length}: ${ranges([...new Set(dups)].sort((a, b) => a - b))}`);
  if (disorder.length) problems.push(`out of order ${disorder.length}: ${disorder.slice(0, 10).join('; ')}`);
  if (unknown.length) problems.push(`never sent: ${JSON.stringify(unknown.slice(0, 10))}`);
  return problems.join('\n');
}

/** assertSequence fails with a readable summary unless got is exactly 1..count. */
export function assertSequence(got, count, what) {
  const p = sequenceProblems(got, count);
  if (p) {
    throw new AssertionError({ message: `${what}: received ${got.length} of ${count} numbered messages\n${p}` });
  }
}
