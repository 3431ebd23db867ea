// The npm package as a user gets it: `npm pack`, install the tarball into a
// scratch project, and compile every example of README.md against it under
// `tsc --strict`, with both of TypeScript's module resolutions that honour
// the exports map.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

// examples returns the README's code: each ```js/```ts block as a module,
// and each inline <script> of an ```html block as a classic script.
function examples(readme) {
  const out = [];
  const re = /```(\w+)\n([\s\S]*?)```/g;
  for (let m; (m = re.exec(readme)); ) {
    const [, lang, code] = m;
    if (lang === 'js' || lang === 'ts') out.push({ kind: 'module', code });
    if (lang === 'html') {
      for (const s of code.matchAll(/<script>([\s\S]*?)<\/script>/g)) out.push({ kind: 'script', code: s[1] });
    }
  }
  return out;
}

// asModule turns a README module example into a file of the scratch
// project: the server's URL of the ES module is the package's entry (the
// same file), and an example that uses the global name gets it imported.
function asModule(code) {
  code = code.replace(/from '[^']*\/client\/waterspout\.mjs'/g, `from '${pkg.name}'`);
  if (!/^import /m.test(code)) code = `import * as WaterSpout from '${pkg.name}';\n` + code;
  return code + '\nexport {};\n';
}

function asScript(code) {
  return `/// <reference types="${pkg.name}/script" />\n` + code;
}

test('npm pack → install → README examples compile under tsc --strict', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'waterspout-pack-'));
  try {
    const packed = JSON.parse(execFileSync(npm, ['pack', '--json', '--pack-destination', tmp], { cwd: root, encoding: 'utf8' }));
    const files = packed[0].files.map((f) => f.path).sort();
    assert.deepEqual(files, [
      'LICENSE',
      'README.md',
      'dist/types/backoff.d.ts',
      'dist/types/client.d.ts',
      'dist/types/codes.d.ts',
      'dist/types/cursor.d.ts',
      'dist/types/index.d.ts',
      'dist/types/transport.d.ts',
      'dist/types/transport_jsonp.d.ts',
      'dist/types/transport_poll.d.ts',
      'dist/types/transport_sse.d.ts',
      'dist/types/transport_ws.d.ts',
      'dist/types/types.d.ts',
      'dist/waterspout.d.mts',
      'dist/waterspout.d.ts',
      'dist/waterspout.js',
      'dist/waterspout.legacy.js',
      'dist/waterspout.mjs',
      'package.json',
    ]);
    assert.equal(
      readFileSync(join(root, 'LICENSE'), 'utf8'),
      readFileSync(join(root, '..', 'LICENSE'), 'utf8'),
      'client-js/LICENSE must be a copy of the repository LICENSE',
    );

    const proj = join(tmp, 'project');
    mkdirSync(proj);
    writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    execFileSync(npm, ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', join(tmp, packed[0].filename)], {
      cwd: proj,
      stdio: 'pipe',
    });

    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const ex = examples(readme);
    assert.ok(ex.filter((e) => e.kind === 'module').length >= 3, 'README module examples found');
    assert.ok(ex.filter((e) => e.kind === 'script').length >= 1, 'README script-tag examples found');
    mkdirSync(join(proj, 'scripts'));
    const names = [];
    ex.forEach((e, i) => {
      const name = e.kind === 'module' ? `example${i}.ts` : `scripts/example${i}.ts`;
      writeFileSync(join(proj, name), e.kind === 'module' ? asModule(e.code) : asScript(e.code));
      names.push(name);
    });
    // The README's publish promise, used as the docs show it.
    writeFileSync(
      join(proj, 'publish.ts'),
      `import { Client } from '${pkg.name}';\n` +
        `const n: Promise<number> = new Client('http://x').publish('chat', { text: 'hi' }).then((r) => r.offset);\n` +
        `export { n };\n`,
    );
    names.push('publish.ts');

    for (const [module, moduleResolution] of [['esnext', 'bundler'], ['nodenext', 'nodenext']]) {
      const config = {
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'es2020',
          module,
          moduleResolution,
          lib: ['es2020', 'dom'],
          types: [],
          skipLibCheck: false,
        },
        // Classic scripts (the script-tag build's global) are for pages, not
        // Node: nodenext makes every file of a "type": "module" project an
        // ES module, where a UMD global is refused.
        files: moduleResolution === 'nodenext' ? names.filter((n) => !n.startsWith('scripts/')) : names,
      };
      writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify(config, null, 2));
      try {
        execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: proj, encoding: 'utf8', stdio: 'pipe' });
      } catch (err) {
        assert.fail(`tsc --strict (${moduleResolution}) failed on the README examples:\n${err.stdout}${err.stderr}`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
