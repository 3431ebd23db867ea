import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stale } from '../scripts/check-stale.mjs';
import { sizes } from '../scripts/sizes.mjs';

test('dist/ matches a fresh build of the sources (run `npm run build` when this fails)', async () => {
  assert.deepEqual(await stale(), []);
});

test('bundle size budgets (min+gzip): script ≤ 6.5 KB, module ≤ 6.25 KB, legacy ≤ 9 KB', () => {
  for (const s of sizes(new URL('../dist', import.meta.url).pathname)) {
    console.log(`${s.file}: ${s.bytes} B minified, ${s.gzip} B min+gzip (budget ${s.budget} B)`);
    assert.ok(s.gzip <= s.budget, `${s.file} is ${s.gzip} B gzipped, over its ${s.budget} B budget`);
  }
});
