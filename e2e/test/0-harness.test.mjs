// The suite's own checks: the sequence checker every scenario relies on
// must catch what it is there to catch, and every proxy template must be a
// configuration its proxy accepts.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { render } from '../lib/harness.mjs';
import { sequenceProblems } from '../lib/stream.mjs';
import { CI, E2E, findTool, missingTool, run } from '../lib/tools.mjs';

describe('0 sequenceProblems', () => {
  const cases = [
    { name: 'exact', got: [1, 2, 3, 4], want: '' },
    { name: 'empty', got: [], want: 'missing 4: 1–4' },
    { name: 'gap', got: [1, 2, 4], want: 'missing 1: 3' },
    { name: 'duplicate', got: [1, 2, 2, 3, 4], want: 'duplicated 1: 2' },
    { name: 'reordered', got: [1, 3, 2, 4], want: 'out of order 1: 3→2 at #2' },
    { name: 'stranger', got: [1, 2, 3, 4, 5], want: 'never sent: [5]' },
    { name: 'undefined n', got: [1, 2, 3, undefined], want: 'missing 1: 4\nnever sent: [null]' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(sequenceProblems(c.got, 4), c.want);
    });
  }
});

describe('0 proxy templates', () => {
  const dir = path.join(E2E, 'proxies');
  for (const file of readdirSync(dir)) {
    const kind = file.startsWith('nginx') ? 'nginx' : 'haproxy';
    test(`${file} is accepted by ${kind}`, async (t) => {
      const missing = missingTool(kind);
      if (missing) {
        if (CI) throw new Error(missing);
        t.skip(missing);
        return;
      }
      const work = mkdtempSync(path.join(tmpdir(), 'waterspout-e2e-conf-'));
      try {
        const conf = path.join(work, file);
        const text = render(readFileSync(path.join(dir, file), 'utf8'), { LISTEN_PORT: 1, UPSTREAM_PORT: 2, DIR: work });
        assert.doesNotMatch(text, /\{\{|\}\}/);
        writeFileSync(conf, text);
        const args = kind === 'nginx'
          ? ['-t', '-q', '-p', `${work}/`, '-c', conf, '-e', path.join(work, 'error.log'), '-g', 'daemon off;']
          : ['-c', '-f', conf];
        await run(findTool(kind), args);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  }
});
