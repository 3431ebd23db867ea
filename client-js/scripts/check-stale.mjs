// Rebuilds into a temporary directory and fails when the committed dist/
// differs: the Go server embeds dist/, so it must match the sources.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from './build.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function list(dir, base = dir) {
  const out = [];
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) out.push(...list(p, base));
    else out.push(relative(base, p));
  }
  return out;
}

/** stale returns the files of dist/ that differ from a fresh build (empty when up to date). */
export async function stale() {
  const tmp = mkdtempSync(join(tmpdir(), 'waterspout-stale-'));
  try {
    const fresh = await build(tmp);
    const dist = join(root, 'dist');
    const a = list(fresh);
    const b = list(dist);
    const diff = [];
    for (const f of new Set([...a, ...b])) {
      if (!a.includes(f) || !b.includes(f) || !readFileSync(join(fresh, f)).equals(readFileSync(join(dist, f)))) diff.push(f);
    }
    return diff.sort();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const diff = await stale();
  if (diff.length) {
    console.error('client-js/dist is stale; run `npm run build` and commit dist/. Differs: ' + diff.join(', '));
    process.exit(1);
  }
  console.log('client-js/dist is up to date');
}
