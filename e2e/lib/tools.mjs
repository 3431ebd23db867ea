// Finding the outside programs the suite drives (Chromium, Firefox, WebKit,
// nginx, haproxy, Go) and building the waterspout binary under test.

import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** E2E is the e2e/ folder; REPO the repository root. */
export const E2E = fileURLToPath(new URL('..', import.meta.url));
export const REPO = path.resolve(E2E, '..');

/**
 * CI is true under a CI runner. There nothing may be skipped: a missing
 * program fails the scenario that needs it instead.
 */
export const CI = ['true', '1', 'yes'].includes(String(process.env.CI || '').toLowerCase());

const TOOLS = {
  chromium: { env: 'CHROMIUM', names: ['chromium', 'chromium-browser'], pkg: 'chromium' },
  // Firefox (Gecko) through puppeteer-core over WebDriver BiDi.
  firefox: { env: 'FIREFOX', names: ['firefox-esr', 'firefox'], pkg: 'firefox-esr' },
  nginx: { env: 'NGINX', names: ['nginx'], pkg: 'nginx' },
  haproxy: { env: 'HAPROXY', names: ['haproxy'], pkg: 'haproxy' },
  go: { env: 'GO', names: ['go'], extra: ['/usr/local/go/bin'], pkg: 'golang (or the Go toolchain from go.dev)' },
  // WebKitGTK (Safari's engine) through its WebDriver, on a virtual display.
  webkitdriver: { env: 'WEBKIT_WEBDRIVER', names: ['WebKitWebDriver'], pkg: 'webkit2gtk-driver' },
  'xvfb-run': { env: 'XVFB_RUN', names: ['xvfb-run'], pkg: 'xvfb' },
};

function executable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const found = new Map();

/** findTool returns the path of a program, or null when it is not installed. */
export function findTool(name) {
  if (found.has(name)) return found.get(name);
  const tool = TOOLS[name];
  let result = null;
  if (process.env[tool.env]) {
    // An explicit choice: no fallback to another copy.
    result = executable(process.env[tool.env]) ? process.env[tool.env] : null;
  } else {
    // sbin is not on every PATH, but that is where Debian puts nginx and haproxy.
    const dirs = [...(process.env.PATH || '').split(':'), '/usr/sbin', '/usr/bin', '/usr/local/sbin', ...(tool.extra || [])];
    outer: for (const n of tool.names) {
      for (const d of dirs) {
        if (d && executable(path.join(d, n))) {
          result = path.join(d, n);
          break outer;
        }
      }
    }
  }
  found.set(name, result);
  return result;
}

/**
 * missingTool explains how to get a program the suite needs, or returns
 * null when it is there.
 */
export function missingTool(name) {
  if (findTool(name)) return null;
  const tool = TOOLS[name];
  return `${name} is not installed (apt-get install -y ${tool.pkg}, or set ${tool.env}=/path/to/${tool.names[0]})`;
}

/** run runs a program to completion and returns its output; it rejects with the output on failure. */
export function run(file, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 16 << 20, ...opts }, (err, stdout, stderr) => {
      if (err) {
        err.message = `${path.basename(file)} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`;
        reject(err);
        return;
      }
      resolve(stdout + stderr);
    });
  });
}

let built = null;

/**
 * waterspoutBinary builds ./cmd/waterspout once per process (Go's build
 * cache makes repeats cheap) and returns its path. WATERSPOUT_BIN names a
 * binary built beforehand instead (run.mjs builds one for the whole suite).
 */
export function waterspoutBinary() {
  built ??= (async () => {
    if (process.env.WATERSPOUT_BIN) return process.env.WATERSPOUT_BIN;
    const go = findTool('go');
    if (!go) throw new Error(missingTool('go'));
    const dir = mkdtempSync(path.join(tmpdir(), 'waterspout-bin-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const out = path.join(dir, 'waterspout');
    await run(go, ['build', '-o', out, './cmd/waterspout'], { cwd: REPO });
    return out;
  })();
  return built;
}
