// The scenario harness: every scenario gets a Harness that starts servers,
// proxies and browser pages on free loopback ports, and stops all of them
// when the scenario ends. When a scenario fails, its logs, page states and
// screenshots are kept under e2e/artifacts/<scenario>/.

import { spawn } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import { Builder } from 'selenium-webdriver';

import { ENGINES, ENGINE_TOOLS, PlaywrightPage, PuppeteerPage, WebDriverPage } from './engines.mjs';
import { CI, E2E, findTool, missingTool, waterspoutBinary } from './tools.mjs';

export const ARTIFACTS = path.join(E2E, 'artifacts');
const PAGES = path.join(E2E, 'pages');
const PROXIES = path.join(E2E, 'proxies');
// sockjs-client's own browser bundle, wherever npm put it.
const SOCKJS_BUNDLE = createRequire(import.meta.url).resolve('sockjs-client/dist/sockjs.min.js');

/**
 * FIREFOX_PREFS keep a headless Firefox from reaching out to Mozilla's
 * services and from slowing down timers of a page it thinks is in the
 * background (puppeteer adds its own automation defaults).
 */
const FIREFOX_PREFS = {
  'app.update.enabled': false,
  'browser.shell.checkDefaultBrowser': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
  'dom.min_background_timeout_value': 0,
};

/** CHROMIUM_ARGS keep a headless Chromium quiet and runnable as root in a container. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

// Every process a harness starts, so that nothing outlives the test process
// even when a scenario hangs past its timeout.
const live = new Set();
process.on('exit', () => {
  for (const p of live) p.signalGroup('SIGKILL');
});
// The children run in process groups of their own, so a ^C at the terminal
// does not reach them: take them down before going.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => process.exit(sig === 'SIGINT' ? 130 : 143));
}

let firefox = null; // the shared Firefox: a promise of puppeteer's Browser
let chromiumBrowser = null; // the shared Chromium: a promise of Playwright's Browser

/**
 * sharedChromium returns Debian's Chromium, headless, driven by
 * playwright-core, as sharedFirefox does Firefox: started once per test
 * process (a start and a close cost about 1.5 s on the CI machine, paid by
 * every scenario when each had a browser of its own), with a browser context
 * of its own per page (no shared cookies, storage or cache), which the
 * scenario closes at its end. A browser that died, or failed to start, is
 * started again.
 */
function sharedChromium() {
  const previous = chromiumBrowser ?? Promise.resolve(null);
  chromiumBrowser = previous.catch(() => null).then((b) => (b?.isConnected()
    ? b
    : chromium.launch({ executablePath: findTool('chromium'), headless: true, args: CHROMIUM_ARGS })));
  return chromiumBrowser;
}

/**
 * sharedFirefox returns Debian's Firefox ESR, headless, driven by
 * puppeteer-core over WebDriver BiDi. It starts once per test process (it
 * takes about 2 s, ten times Chromium) and serves every scenario of the
 * file: each page gets a browser context of its own (no shared cookies,
 * storage or cache), which the scenario closes at its end. A browser that
 * died, or failed to start, is started again. Callers queue on one promise,
 * so pages opened at once share one start.
 */
function sharedFirefox() {
  const previous = firefox ?? Promise.resolve(null);
  firefox = previous.catch(() => null).then((b) => (b?.connected ? b : launchFirefox()));
  return firefox;
}

/**
 * launchFirefox starts Firefox with a profile and a HOME in a folder of
 * their own (it runs as root that way, headless, with no display): with the
 * user's HOME it would write ~/.cache/mozilla and ~/.config/mozilla there.
 */
async function launchFirefox() {
  const dir = mkdtempSync(path.join(tmpdir(), 'waterspout-e2e-firefox-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const home = path.join(dir, 'home');
  const profile = path.join(dir, 'profile');
  mkdirSync(home);
  mkdirSync(profile);
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: findTool('firefox'),
    headless: true,
    userDataDir: profile,
    extraPrefsFirefox: FIREFOX_PREFS,
    env: { ...process.env, HOME: home, XDG_CACHE_HOME: path.join(home, '.cache'), MOZ_CRASHREPORTER_DISABLE: '1' },
    defaultViewport: { width: 1100, height: 900 },
    protocolTimeout: 30_000,
  });
}

// The shared Firefox and Chromium go when the file's last scenario has ended
// (their connections would keep the test process alive); puppeteer and
// Playwright also kill them if the process exits first. The timers that
// bound a close, here and below, are unref'd: one left running after the
// race would hold the test process for its full length.
after(async () => {
  for (const shared of [firefox, chromiumBrowser]) {
    const browser = await shared?.catch(() => null);
    if (browser) await Promise.race([browser.close().catch(() => {}), sleep(10_000, undefined, { ref: false })]);
  }
});

/** freePort asks the kernel for a free loopback port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Proc is a child process in its own process group, so that a kill reaches
 * every process it forked (nginx's workers) at once, as a crash would.
 */
class Proc {
  constructor(name, file, args, { env, logFile, cwd }) {
    this.name = name;
    this.file = file;
    this.args = args;
    const fd = openSync(logFile, 'a');
    this.child = spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.pid = this.child.pid;
    this.exitCode = undefined;
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitCode = code ?? signal;
        live.delete(this);
        resolve(this.exitCode);
      });
      this.child.on('error', (err) => {
        this.exitCode = err.message;
        live.delete(this);
        resolve(this.exitCode);
      });
    });
  }

  get running() {
    return this.exitCode === undefined;
  }

  signalGroup(signal) {
    if (!this.running) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** stop sends signal to the group and waits for the process to end (SIGKILL after graceMs). */
  async stop(signal = 'SIGKILL', graceMs = 15_000) {
    this.signalGroup(signal);
    const timer = setTimeout(() => this.signalGroup('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    // The leader is gone; make sure no forked worker (nginx's outlive a
    // killed master) is left holding a port.
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // The group is empty.
    }
  }
}

/** render fills the {{NAME}} placeholders of a proxy template; an unknown one is an error. */
export function render(template, vars) {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (m, k) => {
    if (!(k in vars)) throw new Error(`template placeholder ${m} has no value`);
    return String(vars[k]);
  });
}

/** miniBrowser returns WebKitGTK's MiniBrowser, which WebKitWebDriver drives (package libwebkit2gtk-4.1-0). */
function miniBrowser() {
  for (const d of readdirSync('/usr/lib')) {
    const f = path.join('/usr/lib', d, 'webkit2gtk-4.1', 'MiniBrowser');
    if (existsSync(f)) return f;
  }
  throw new Error('WebKitGTK MiniBrowser not found under /usr/lib/*/webkit2gtk-4.1 (apt-get install -y webkit2gtk-driver)');
}

function slug(name) {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80);
}

/**
 * Harness owns what one scenario starts. Use it through scenario().
 */
export class Harness {
  constructor(t, name) {
    this.t = t;
    this.name = name;
    this.signal = t.signal;
    this.dir = mkdtempSync(path.join(tmpdir(), 'waterspout-e2e-'));
    this.procs = [];
    this.pages = []; // EnginePages, in the order they were opened
    this.byRaw = new WeakMap(); // a driver's own page object → its EnginePage
    this.chromiumContexts = []; // this scenario's contexts in the shared Chromium
    this.firefoxContexts = []; // this scenario's contexts in the shared Firefox
    this.drivers = []; // WebDriver sessions (WebKit)
    this.pageServer = null; // the static server of e2e/pages
    this.closed = false;
    this.notes = [];
  }

  /** need reports whether programs are installed; outside CI a missing one skips the scenario, in CI it fails it. */
  need(...names) {
    for (const n of names) {
      const msg = missingTool(n);
      if (!msg) continue;
      if (CI) throw new Error(`${msg}: CI must run every end-to-end scenario`);
      this.t.skip(msg);
      return false;
    }
    return true;
  }

  /** needEngine is need() for the programs a browser engine (see ENGINES) runs on. */
  needEngine(engine) {
    if (!ENGINE_TOOLS[engine]) throw new Error(`unknown engine ${engine}; known: ${ENGINES.join(', ')}`);
    return this.need(...ENGINE_TOOLS[engine]);
  }

  /** note records a line that is printed with the test's diagnostics and kept in the artifacts. */
  note(line) {
    this.notes.push(line);
    this.t.diagnostic(line);
  }

  _spawn(name, file, args, env = process.env) {
    const logFile = path.join(this.dir, `${name}.log`);
    const p = new Proc(name, file, args, { env, logFile, cwd: this.dir });
    p.logFile = logFile;
    this.procs.push(p);
    return p;
  }

  /** log returns what a process has written so far. */
  log(proc) {
    try {
      return readFileSync(proc.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * startServer runs `waterspout serve` on a loopback port and waits until
   * /readyz answers 200. Unless port is given, the server binds port 0 and
   * the port it got is read from its "listening" log line: a port picked
   * before the server binds it can be taken meanwhile (by an outgoing
   * connection's ephemeral port, or another test file's server, which
   * /readyz would then reach instead). allowPages false leaves the test
   * pages' origin out of the allow-list. The returned object restarts it on
   * the same port with start() after stop().
   */
  async startServer({ port = 0, args = [], allowPages = true } = {}) {
    const bin = await waterspoutBinary();
    // The test pages' origin is allowed to connect, as an application's is
    // (unless a scenario shows what a page that is not allowed sees).
    const extra = [...(allowPages ? ['--allowed-origin', await this.pagesOrigin()] : []), ...args];
    // Settings come from flags only: a developer's WATERSPOUT_* variables must not leak in.
    const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WATERSPOUT_')));
    const h = this;
    const server = {
      port,
      url: `http://127.0.0.1:${port}`,
      proc: null,
      starts: 0,
      async start() {
        server.starts++;
        server.proc = h._spawn(`server-${server.port || 'any'}-${server.starts}`, bin,
          ['serve', '--addr', `127.0.0.1:${server.port}`, '--log-level', 'debug', ...extra], childEnv);
        if (server.port === 0) {
          const proc = server.proc;
          server.port = await h.waitFor('waterspout to log its port', () => {
            if (!proc.running) {
              throw Object.assign(new Error(`${proc.name} exited (${proc.exitCode}) before listening:\n${h.log(proc).slice(-4000)}`), { fatal: true });
            }
            const m = /msg=listening addr=127\.0\.0\.1:(\d+)/.exec(h.log(proc));
            return m ? Number(m[1]) : 0;
          }, { timeout: 20_000, interval: 20 });
          server.url = `http://127.0.0.1:${server.port}`;
        }
        await h.waitHTTP(`${server.url}/readyz`, server.proc, 'waterspout /readyz');
        return server;
      },
      stop(signal = 'SIGTERM') {
        return server.proc.stop(signal);
      },
    };
    return server.start();
  }

  /**
   * startProxy runs nginx or haproxy (kind) with the template
   * e2e/proxies/<template>, listening on a free loopback port and forwarding
   * to upstream (a server from startServer). kill() cuts it like a crash
   * (SIGKILL to the whole process group); start() brings it back on the
   * same port with the same configuration.
   */
  async startProxy(kind, template, upstream, { port } = {}) {
    if (port !== undefined) return this._startProxyAt(kind, template, upstream, port);
    // nginx and haproxy cannot tell their port: a free one is picked first,
    // and picked again when it was taken before the proxy bound it.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this._startProxyAt(kind, template, upstream, await freePort());
      } catch (err) {
        if (attempt === 5 || !/address already in use|cannot bind socket/i.test(err.message)) throw err;
        this.note(`${kind}: its port was taken before it bound it; trying another`);
      }
    }
  }

  async _startProxyAt(kind, template, upstream, port) {
    const dir = path.join(this.dir, `${kind}-${port}`);
    mkdirSync(dir, { recursive: true });
    const conf = path.join(dir, path.basename(template));
    writeFileSync(conf, render(readFileSync(path.join(PROXIES, template), 'utf8'), {
      LISTEN_PORT: port,
      UPSTREAM_PORT: upstream.port,
      DIR: dir,
    }));
    let file;
    let args;
    if (kind === 'nginx') {
      file = findTool('nginx');
      // daemon off keeps the master in the foreground, in the group we kill.
      // As root, workers would drop to `nobody`, which cannot write the temp
      // folders under our 0700 work dir.
      const main = 'daemon off;' + (process.getuid?.() === 0 ? ' user root;' : '');
      args = ['-p', `${dir}/`, '-c', conf, '-e', path.join(dir, 'error.log'), '-g', main];
    } else if (kind === 'haproxy') {
      file = findTool('haproxy');
      args = ['-f', conf, '-db']; // -db: stay in the foreground
    } else {
      throw new Error(`unknown proxy ${kind}`);
    }
    const h = this;
    const proxy = {
      kind,
      port,
      dir,
      url: `http://127.0.0.1:${port}`,
      proc: null,
      starts: 0,
      async start() {
        proxy.starts++;
        proxy.proc = h._spawn(`${kind}-${port}-${proxy.starts}`, file, args);
        await h.waitHTTP(`${proxy.url}/livez`, proxy.proc, `${kind} → waterspout /livez`);
        return proxy;
      },
      kill() {
        return proxy.proc.stop('SIGKILL');
      },
    };
    return proxy.start();
  }

  /** waitHTTP polls url until it answers 200, failing early when proc exits. */
  async waitHTTP(url, proc, what) {
    await this.waitFor(what, async () => {
      if (proc && !proc.running) {
        throw Object.assign(new Error(`${proc.name} exited (${proc.exitCode}) before ${what} answered:\n${this.log(proc).slice(-4000)}`), { fatal: true });
      }
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return res.status === 200;
      } catch {
        return false;
      }
    }, { timeout: 20_000, interval: 50 });
  }

  /**
   * waitFor polls fn until it returns a truthy value, which it returns. The
   * timeout only bounds a scenario that would otherwise hang; nothing is
   * asserted about how long it took. detail() adds state to the failure.
   * An error thrown by fn with .fatal set ends the wait at once.
   */
  async waitFor(what, fn, { timeout = 30_000, interval = 100, detail } = {}) {
    const deadline = Date.now() + timeout;
    let lastErr;
    for (;;) {
      this.signal.throwIfAborted();
      try {
        const v = await fn();
        if (v) return v;
        lastErr = undefined;
      } catch (err) {
        if (err.fatal) throw err; // no point waiting any longer
        lastErr = err;
      }
      if (Date.now() > deadline) {
        let msg = `timed out after ${timeout} ms waiting for ${what}`;
        if (lastErr) msg += `\nlast error: ${lastErr.message}`;
        if (detail) {
          try {
            msg += `\n${await detail()}`;
          } catch (err) {
            msg += `\n(detail failed: ${err.message})`;
          }
        }
        throw new Error(msg);
      }
      await sleep(interval, undefined, { signal: this.signal });
    }
  }

  /**
   * webkit starts WebKitGTK, Safari's engine, through Debian's
   * WebKitWebDriver on a virtual display (xvfb-run), and returns a
   * selenium-webdriver session of its MiniBrowser. As root (a container),
   * WebKit's web-process sandbox cannot start: it is turned off for it.
   */
  async webkit() {
    const port = await freePort();
    const env = { ...process.env, WEBKIT_DISABLE_SANDBOX_THIS_IS_DANGEROUS: '1' };
    // -f: the display's auth file goes in the scenario's folder, which is
    // removed at the end, not in a folder of /tmp a killed xvfb-run leaves.
    const auth = path.join(this.dir, `xauth-${port}`);
    const proc = this._spawn(`webkitdriver-${port}`, findTool('xvfb-run'), ['-a', '-f', auth, findTool('webkitdriver'), `--port=${port}`], env);
    await this.waitHTTP(`http://127.0.0.1:${port}/status`, proc, 'WebKitWebDriver /status');
    const driver = await new Builder().usingServer(`http://127.0.0.1:${port}`).withCapabilities({
      browserName: 'MiniBrowser',
      'webkitgtk:browserOptions': { binary: miniBrowser(), args: ['--automation'] },
      pageLoadStrategy: 'normal', // navigation returns once the page has finished loading
    }).build();
    this.drivers.push(driver);
    return driver;
  }

  /**
   * browserPage opens a page in engine (one of ENGINES) and returns its
   * EnginePage. Chromium and Firefox pages each get a fresh browser context
   * (no shared storage, cache or cookies); a WebKit page is a WebDriver
   * session of its own (its own MiniBrowser).
   */
  async browserPage(engine = 'chromium') {
    let page;
    if (engine === 'chromium') {
      const context = await (await sharedChromium()).newContext({ viewport: { width: 1100, height: 900 } });
      this.chromiumContexts.push(context);
      page = new PlaywrightPage(await context.newPage());
    } else if (engine === 'firefox') {
      const context = await (await sharedFirefox()).createBrowserContext();
      this.firefoxContexts.push(context);
      page = new PuppeteerPage(await context.newPage());
    } else if (engine === 'webkit') {
      const driver = await this.webkit();
      // Long enough for a slow machine; a page that never finishes loading fails.
      await driver.manage().setTimeouts({ pageLoad: 20_000, script: 10_000 });
      page = new WebDriverPage(driver);
    } else {
      throw new Error(`unknown engine ${engine}; known: ${ENGINES.join(', ')}`);
    }
    this.pages.push(page);
    this.byRaw.set(page.raw, page);
    return page;
  }

  /** enginePage returns the EnginePage of page (an EnginePage, or the driver's own page of one). */
  enginePage(page) {
    const p = this.byRaw.get(page) ?? page;
    if (typeof p.goto !== 'function' || !p.engine) throw new Error('not a page of this harness');
    return p;
  }

  /**
   * pagesOrigin starts (once per scenario) the static server of the test
   * pages and returns its origin. The pages are a site of their own, on
   * another port than WaterSpout, as an application's pages usually are
   * (push.example.com beside www.example.com): every WaterSpout server the
   * harness starts allows this origin.
   */
  async pagesOrigin() {
    if (!this.pageServer) {
      const srv = createHttpServer((req, res) => {
        const url = new URL(req.url, 'http://x');
        const name = url.pathname.slice(1);
        if (name === 'slow') {
          // A resource that holds the page's load event for ?ms= milliseconds.
          const ms = Math.min(Number(url.searchParams.get('ms')) || 0, 10_000);
          const timer = setTimeout(() => res.writeHead(204).end(), ms);
          res.on('close', () => clearTimeout(timer));
          return;
        }
        const file = name === 'sockjs.min.js'
          ? SOCKJS_BUNDLE
          : path.join(PAGES, path.basename(name));
        let body;
        try {
          body = readFileSync(file);
        } catch {
          res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
          return;
        }
        if (file.endsWith('.html')) {
          // The page names the WaterSpout server (or proxy) it talks to.
          const server = url.searchParams.get('server') || '';
          if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(server)) {
            res.writeHead(400, { 'Content-Type': 'text/plain' }).end('bad server parameter');
            return;
          }
          body = body.toString('utf8').replaceAll('{{SERVER}}', server);
        }
        const type = file.endsWith('.html') ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8';
        res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' }).end(body);
      });
      await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', resolve);
      });
      this.pageServer = srv;
      this.pagesURL = `http://127.0.0.1:${srv.address().port}`;
    }
    return this.pagesURL;
  }

  /**
   * openTestPage loads e2e/pages/<file> from the pages server; the page
   * talks to server (a WaterSpout server or a proxy in front of one). config
   * reaches the page's script as JSON in the URL fragment.
   */
  async openTestPage(page, server, file, config = {}) {
    const origin = await this.pagesOrigin();
    const q = new URLSearchParams({ server: server.url });
    await this.enginePage(page).goto(`${origin}/${file}?${q}#${encodeURIComponent(JSON.stringify(config))}`);
    return page;
  }

  /**
   * openClient opens a page in engine (Chromium unless given;
   * pages/client.html unless file says otherwise) whose bundled client
   * connects to server (a WaterSpout server or a proxy) and subscribes
   * config.channel with config.options, waits until the subscription is in
   * place, and returns the EnginePage.
   */
  async openClient(server, config, { engine = 'chromium', file = 'client.html', timeout = 30_000 } = {}) {
    const page = await this.browserPage(engine);
    await this.openTestPage(page, server, file, config);
    await this.waitFor(`${file} subscribed to ${config.channel}`, async () => {
      const st = await this.pageState(page);
      const broken = st.errors.find((e) => /bundle did not load/.test(e.message));
      if (broken) throw Object.assign(new Error(`${file}: ${broken.message}`), { fatal: true });
      return st.subscribed.length > 0;
    }, {
      timeout,
      detail: async () => `page state: ${JSON.stringify(await this.pageState(page))}`,
    });
    return page;
  }

  /** waitMessages waits until the page has recorded count messages (of phase, when given) and returns them. */
  async waitMessages(page, count, { phase, timeout = 60_000, settleMs = 300 } = {}) {
    const pick = (st) => st.messages.filter((m) => phase === undefined || m.phase === phase);
    let last = [];
    await this.waitFor(`${count} messages${phase ? ` of phase ${phase}` : ''} in the page`, async () => {
      last = pick(await this.pageState(page));
      return last.length >= count;
    }, {
      timeout,
      detail: async () => {
        const st = await this.pageState(page);
        return `got ${pick(st).length}; transports ${JSON.stringify(st.transports)}; recoveries ${JSON.stringify(st.recoveries)}; ` +
          `disconnects ${JSON.stringify(st.disconnects)}; errors ${JSON.stringify(st.errors)}`;
      },
    });
    // A duplicate or stray message would arrive right behind the last one:
    // read once more after a moment so the caller's check sees it.
    await sleep(settleMs, undefined, { signal: this.signal });
    return pick(await this.pageState(page));
  }

  /** pageState returns the page collector's record (window.e2e, see pages/collector.js). */
  pageState(page) {
    return page.evaluate(() => JSON.parse(JSON.stringify(window.e2e)));
  }

  /** close stops everything; with failed it first saves logs and screenshots under e2e/artifacts. */
  async close(failed) {
    if (this.closed) return;
    this.closed = true;
    if (failed) await this._saveArtifacts().catch((err) => this.t.diagnostic(`saving artifacts failed: ${err.message}`));
    for (const c of [...this.chromiumContexts, ...this.firefoxContexts]) await Promise.race([c.close().catch(() => {}), sleep(5000, undefined, { ref: false })]);
    for (const d of this.drivers) await Promise.race([d.quit().catch(() => {}), sleep(5000, undefined, { ref: false })]);
    if (this.pageServer) {
      this.pageServer.closeAllConnections();
      this.pageServer.close();
    }
    await Promise.all(this.procs.map((p) => p.stop('SIGKILL')));
    rmSync(this.dir, { recursive: true, force: true });
  }

  async _saveArtifacts() {
    const out = path.join(ARTIFACTS, slug(this.name));
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    for (const [i, page] of this.pages.entries()) {
      writeFileSync(path.join(out, `page${i}-${page.engine}-console.log`), page.consoleLog.join('\n') + '\n');
      if (page.closed) continue;
      await page.screenshot(path.join(out, `page${i}-${page.engine}.png`)).catch(() => {});
      const state = await Promise.race([
        page.evaluate(() => (window.e2e ? JSON.stringify(window.e2e, null, 1) : null)).catch(() => null),
        sleep(3000, null, { ref: false }),
      ]);
      if (state) writeFileSync(path.join(out, `page${i}-${page.engine}-state.json`), state);
    }
    // Process logs and rendered proxy configs.
    cpSync(this.dir, out, { recursive: true, filter: (src) => !/_temp|client_body|proxy_temp/.test(src) });
    if (this.notes.length) writeFileSync(path.join(out, 'notes.txt'), this.notes.join('\n') + '\n');
    this.t.diagnostic(`artifacts: ${out}`);
  }
}

/**
 * scenario declares one end-to-end test. fn gets a Harness; everything it
 * starts is stopped when the test ends, times out or fails. todo (a reason)
 * marks a scenario that shows a known bug: it runs and reports, but its
 * failure does not fail the suite.
 */
export function scenario(name, fn, { timeout = 120_000, todo } = {}) {
  test(name, { timeout, todo }, async (t) => {
    const h = new Harness(t, name);
    // A timed-out test is not awaited any further: clean up from the abort.
    const onAbort = () => h.close(true);
    t.signal.addEventListener('abort', onAbort, { once: true });
    let failed = true;
    try {
      await fn(h, t);
      failed = false;
    } finally {
      t.signal.removeEventListener('abort', onAbort);
      await h.close(failed);
    }
  });
}
