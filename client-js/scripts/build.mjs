// Builds every bundle into an output directory (default dist/):
//   waterspout.mjs        ES module (ES2017)
//   waterspout.js         minified script-tag build, global WaterSpout (ES2017)
//   waterspout.legacy.js  minified ES5 script-tag build (poll + JSONP), global WaterSpout
//   waterspout.d.mts      types of the ES module (types/*.d.ts behind it)
//   waterspout.d.ts       types of the script-tag builds (the global WaterSpout)
//   sockjs.min.js         sockjs-client, unchanged from its npm package (MIT), for the
//                         SockJS iframe page the server serves (never a CDN)
// The output depends only on the sources and the pinned tool versions, so
// check-stale.mjs can rebuild and compare byte for byte.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');

const banner = '/*! WaterSpout client v0.1.0 */';

// Internal members start with '_' and are renamed to keep the bundles small.
// No wire field and no public API starts with '_'.
const common = { bundle: true, write: false, legalComments: 'none', mangleProps: /^_/, banner: { js: banner }, logLevel: 'silent' };

function run(args) {
  execFileSync(process.execPath, [tsc, ...args], { cwd: root, stdio: 'inherit' });
}

export async function build(outdir) {
  outdir = resolve(root, outdir);
  const tmp = mkdtempSync(join(tmpdir(), 'waterspout-build-'));
  try {
    mkdirSync(outdir, { recursive: true });
    // Legacy: TypeScript lowers to ES5 (esbuild cannot), esbuild bundles and minifies.
    run(['-p', 'tsconfig.legacy.json', '--outDir', join(tmp, 'es5')]);
    // Types.
    run(['-p', 'tsconfig.json', '--emitDeclarationOnly', '--outDir', join(tmp, 'types')]);

    const outputs = await Promise.all([
      esbuild.build({ ...common, entryPoints: [join(root, 'src/index.ts')], format: 'esm', target: 'es2017', minify: true }),
      esbuild.build({ ...common, entryPoints: [join(root, 'src/index.ts')], format: 'iife', globalName: 'WaterSpout', target: 'es2017', minify: true }),
      esbuild.build({ ...common, entryPoints: [join(tmp, 'es5/legacy.js')], format: 'iife', globalName: 'WaterSpout', target: 'es5', minify: true }),
    ]);
    const names = ['waterspout.mjs', 'waterspout.js', 'waterspout.legacy.js'];
    outputs.forEach((r, i) => writeFileSync(join(outdir, names[i]), r.outputFiles[0].text));

    copyFileSync(require.resolve('sockjs-client/dist/sockjs.min.js'), join(outdir, 'sockjs.min.js'));

    rmSync(join(outdir, 'types'), { recursive: true, force: true });
    mkdirSync(join(outdir, 'types'));
    for (const f of readdirSync(join(tmp, 'types')).sort()) {
      if (f.endsWith('.d.ts') && f !== 'legacy.d.ts') copyFileSync(join(tmp, 'types', f), join(outdir, 'types', f));
    }
    // One declaration file per kind of entry: TypeScript looks for
    // waterspout.d.mts beside waterspout.mjs, and the script-tag builds
    // (waterspout.js, waterspout.legacy.js) define the global WaterSpout,
    // which `export as namespace` declares.
    writeFileSync(
      join(outdir, 'waterspout.d.mts'),
      '// Types of the WaterSpout client\'s ES module, waterspout.mjs.\n' + "export * from './types/index.js';\n",
    );
    writeFileSync(
      join(outdir, 'waterspout.d.ts'),
      '// Types of the WaterSpout client\'s script-tag builds: the global WaterSpout.\n' +
        "export * from './types/index.js';\nexport as namespace WaterSpout;\n",
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return outdir;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await build(process.argv[2] || 'dist');
  const { sizes } = await import('./sizes.mjs');
  for (const s of sizes(out)) console.log(`${s.file}: ${s.bytes} B, ${s.gzip} B min+gzip`);
}
