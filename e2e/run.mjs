// Runs the end-to-end suite: builds ./cmd/waterspout once, checks that the
// programs the scenarios drive are installed, then runs test/*.test.mjs with
// node's test runner, one file at a time (Chromium, nginx and the server
// share two cores in CI). Arguments are passed to `node --test`:
//
//   npm test --workspace=e2e -- --test-name-pattern='^5 '
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { CI, E2E, REPO, findTool, missingTool, run } from './lib/tools.mjs';

const missing = ['go', 'chromium', 'firefox', 'nginx', 'haproxy', 'webkitdriver', 'xvfb-run'].map(missingTool).filter(Boolean);
if (missing.length) {
  for (const m of missing) console.error(`e2e: ${m}`);
  if (CI) {
    console.error('e2e: CI runs every scenario; install the programs above (scripts/test does it on Debian).');
    process.exit(1);
  }
  console.error('e2e: the scenarios that need them will be skipped (in CI they would fail).');
}

// One build for every test file (each runs in a process of its own).
let dir = null;
if (!process.env.WATERSPOUT_BIN) {
  if (!findTool('go')) process.exit(1); // said above; nothing runs without the server
  dir = mkdtempSync(path.join(tmpdir(), 'waterspout-e2e-bin-'));
  process.env.WATERSPOUT_BIN = path.join(dir, 'waterspout');
  const started = Date.now();
  try {
    await run(findTool('go'), ['build', '-o', process.env.WATERSPOUT_BIN, './cmd/waterspout'], { cwd: REPO });
  } catch (err) {
    console.error(`e2e: building the server failed:\n${err.message}`);
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  }
  console.log(`e2e: built ${process.env.WATERSPOUT_BIN} in ${Date.now() - started} ms`);
}

// Artifacts of an earlier run would be mistaken for this one's.
mkdirSync(path.join(E2E, 'artifacts'), { recursive: true });
for (const f of readdirSync(path.join(E2E, 'artifacts'))) {
  if (f !== '.gitkeep') rmSync(path.join(E2E, 'artifacts', f), { recursive: true, force: true });
}

const files = readdirSync(path.join(E2E, 'test')).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => path.join('test', f));
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-force-exit', ...process.argv.slice(2), ...files], {
  cwd: E2E,
  stdio: 'inherit',
});
const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
if (dir) rmSync(dir, { recursive: true, force: true });
process.exit(code);
