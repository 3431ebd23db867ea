// Scenario 4: an ES5-era browser. The page loses WebSocket, EventSource,
// fetch and Promise before anything runs, then loads the legacy bundle; it
// must still receive every message, in every browser engine (Chromium,
// Firefox, WebKit). Without XMLHttpRequest as well (an old browser that
// cannot make cross-origin XHR), the client polls over JSONP.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';

import { ENGINES } from '../lib/engines.mjs';
import { scenario } from '../lib/harness.mjs';
import { E2E } from '../lib/tools.mjs';
import { assertSequence, publishNumbered } from '../lib/stream.mjs';

const N = 50;

/**
 * oldBrowser lists the APIs legacy.html deletes (pages/old-browser.js)
 * before the bundle loads. WebKit keeps Promise: WebKitWebDriver runs every
 * script it is asked to (and so every read of the page's state) through the
 * page's own Promise, and fails with "Can't find variable: Promise" without
 * it. Chromium and Firefox show the bundle runs without Promise.
 */
function oldBrowser(removeXHR, engine = 'chromium') {
  return ['WebSocket', 'EventSource', 'fetch', ...(engine === 'webkit' ? [] : ['Promise']), ...(removeXHR ? ['XMLHttpRequest'] : [])];
}

const cases = [
  { title: 'XHR long-polling', removeXHR: false, transport: 'poll', hello: 'poll' },
  { title: 'JSONP when XMLHttpRequest is gone too', removeXHR: true, transport: 'jsonp', hello: 'jsonp' },
];

for (const c of cases) {
  for (const engine of ENGINES) {
    const remove = oldBrowser(c.removeXHR, engine);
    const without = remove.filter((n) => n !== 'XMLHttpRequest').join(', ');
    scenario(`4 old browser (${engine}), legacy bundle without ${without}: ${c.title}`, async (h) => {
      if (!h.needEngine(engine)) return;
      const server = await h.startServer();
      const channel = `e2e-legacy-${c.transport}`;
      const page = await h.openClient(server, { channel, remove }, { engine, file: 'legacy.html' });

      // The page really runs without them (every driver evaluates in the
      // page's own world, so this sees what the client saw).
      const gone = await page.evaluate(() => ({
        WebSocket: typeof WebSocket, EventSource: typeof EventSource, fetch: typeof fetch,
        Promise: typeof Promise, XMLHttpRequest: typeof XMLHttpRequest,
      }));
      assert.deepEqual(gone, {
        WebSocket: 'undefined', EventSource: 'undefined', fetch: 'undefined',
        Promise: remove.includes('Promise') ? 'undefined' : 'function',
        XMLHttpRequest: c.removeXHR ? 'undefined' : 'function',
      });

      let st = await h.pageState(page);
      assert.deepEqual(st.transports.map((t) => [t.name, t.hello]), [[c.transport, c.hello]]);

      await publishNumbered(server.url, channel, { to: N });
      const got = await h.waitMessages(page, N);
      assertSequence(got.map((m) => m.n), N, `${engine} legacy page over ${c.transport}`);
      st = await h.pageState(page);
      assert.deepEqual(st.errors, []);
      if (c.transport === 'jsonp') {
        // A page open for days makes a JSONP request per poll: only the one
        // in flight may hold a global callback and a <script>.
        const left = await page.evaluate(() => ({
          callbacks: Object.keys(window).filter((k) => /^__waterspout\d+$/.test(k)).length,
          scripts: document.querySelectorAll('script[src*="callback=__waterspout"]').length,
        }));
        assert.ok(left.callbacks <= 1 && left.scripts <= 1, `${engine}: JSONP left behind ${JSON.stringify(left)}`);
      }
    });
  }
}

// A page whose long-poll is a pending <script> must still finish loading:
// every script inserted before the load event delays it, so a JSONP client
// that starts its held polls before `load` keeps the page "loading" (spinner,
// no onload handlers) for as long as it polls. What counts is what the
// browser's own navigation sees (the load event, the navigation finishing),
// not document.readyState, which WebKit reports 'complete' while its
// navigation is still going.
// In Chromium and Firefox the page's own load event is the test (Chromium's
// navigation waits for the same event); WebKit has its stronger check below.
for (const engine of ['chromium', 'firefox']) {
  scenario(`4 old browser on JSONP (${engine}): the page still reaches its load event`, async (h) => {
    if (!h.needEngine(engine)) return;
    // Short held polls, so that several come and go while we watch.
    const server = await h.startServer({ args: ['--poll-timeout', '2s'] });
    const page = await h.openClient(server, { channel: 'e2e-jsonp-load', slowImageMs: 1000, remove: oldBrowser(true, engine) }, {
      engine,
      file: 'legacy.html',
    });
    const st = await h.pageState(page);
    assert.equal(st.transports[0]?.name, 'jsonp');
    // Bounded by 10 s: the slow image holds the load for 1 s, and the polls
    // (2 s each) would hold it for ever.
    await h.waitFor('the page\'s load event', async () => (await h.pageState(page)).loadedAt, {
      timeout: 10_000,
      detail: async () => `page state: ${JSON.stringify(await h.pageState(page))}`,
    });
  });
}

// The same in a second engine, WebKit (WebKitGTK, Safari's engine), where
// the bug was seen: a held poll's <script> inserted from inside the window's
// load handler, and each later poll after it, counted as part of the load,
// so the navigation never finished. The WebDriver navigation (page load
// strategy "normal") returns only when WebKit considers the page loaded.
for (const file of ['client.html', 'legacy.html']) {
  scenario(`4 WebKit on JSONP (${file}): the navigation finishes while the client polls`, async (h) => {
    if (!h.need('webkitdriver', 'xvfb-run')) return;
    const server = await h.startServer({ args: ['--poll-timeout', '2s'] });
    const channel = `e2e-webkit-jsonp-${file.replace('.html', '')}`;
    const driver = await h.webkit();
    // Long enough for a slow machine, far shorter than the polling goes on.
    await driver.manage().setTimeouts({ pageLoad: 20_000, script: 10_000 });
    const config = { channel, slowImageMs: 1000, options: { transports: ['jsonp'] } };
    const origin = await h.pagesOrigin();
    const url = `${origin}/${file}?${new URLSearchParams({ server: server.url })}#${encodeURIComponent(JSON.stringify(config))}`;
    try {
      await driver.get(url);
    } catch (err) {
      assert.fail(`WebKit never finished loading a page whose client is on JSONP: ${err.name} ${err.message}`);
    }
    const state = async () => JSON.parse(await driver.executeScript('return JSON.stringify(window.e2e)'));
    await h.waitFor('the page to subscribe', async () => (await state()).subscribed.length > 0, {
      detail: async () => JSON.stringify(await state()),
    });
    let st = await state();
    assert.deepEqual(st.transports.map((t) => [t.name, t.hello]), [['jsonp', 'jsonp']]);
    // Delivery goes on as before, across several held polls.
    await publishNumbered(server.url, channel, { to: N });
    await h.waitFor(`${N} messages in the WebKit page`, async () => (await state()).messages.length >= N, {
      timeout: 60_000,
      detail: async () => JSON.stringify(await state()),
    });
    st = await state();
    assertSequence(st.messages.map((m) => m.n), N, `WebKit page over JSONP (${file})`);
    assert.deepEqual(st.errors, []);
  });
}

// A captive portal (hotel or train Wi-Fi before login) answers every URL
// with its own 200 HTML page. A JSONP poll's <script> then loads, throws a
// SyntaxError and never calls back, and no onerror fires: each poll times
// out and is cancelled. The client records onload and drops the callback
// global at cancel, so a page left open behind the portal does not gain one
// global per poll (it gained one every helloTimeout + backoff before). The
// page is on the portal's origin, as a page served by the push server's own
// host is: across origins, Chromium and Firefox block an HTML answer to a
// script (ORB) and fire onerror, which the client always handled.
for (const engine of ENGINES) {
  scenario(`4 captive portal on JSONP (${engine}): polls that load HTML leave no window globals behind`, async (h) => {
    if (!h.needEngine(engine)) return;
    const pages = await h.pagesOrigin();
    const bundle = readFileSync(path.join(E2E, '..', 'client-js', 'dist', 'waterspout.js'));
    let polls = 0;
    const portal = createServer(async (req, res) => {
      const name = req.url.split('?')[0];
      if (name === '/client/waterspout.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(bundle);
      } else if (['/client.html', '/config.js', '/collector.js'].includes(name)) {
        // The test page and its scripts, from the pages server.
        const r = await fetch(pages + req.url);
        res.writeHead(r.status, { 'Content-Type': r.headers.get('content-type') }).end(Buffer.from(await r.arrayBuffer()));
      } else {
        if (name === '/connect/poll') polls++;
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end('<!doctype html><html><body><form>Log in to the Wi-Fi</form></body></html>');
      }
    });
    await new Promise((resolve) => portal.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${portal.address().port}`;
      const page = await h.browserPage(engine);
      const config = { channel: 'e2e-portal', options: { transports: ['jsonp'], helloTimeout: 300, minDelay: 50, maxDelay: 100 } };
      await h.enginePage(page).goto(`${url}/client.html?${new URLSearchParams({ server: url })}#${encodeURIComponent(JSON.stringify(config))}`);
      const globals = () => page.evaluate(() => Object.keys(window).filter((k) => /^__waterspout\d+$/.test(k)).length);
      const started = Date.now();
      let count = 0;
      // Every poll waits out helloTimeout (300 ms) and a 50..100 ms backoff:
      // in 4 s, about ten polls come and go.
      await h.waitFor('4 s of polls behind the portal', async () => {
        count = await globals();
        return Date.now() - started > 4000;
      }, { timeout: 10_000 });
      const st = await h.pageState(page);
      assert.equal(st.states.at(-1)?.state, 'connecting', JSON.stringify(st.states));
      assert.deepEqual(st.transports, []);
      assert.ok(polls >= 5, `the client kept polling: ${polls} polls`);
      assert.ok(count <= 1, `at most the live poll's global is left, got ${count} after ${polls} polls`);
    } finally {
      portal.closeAllConnections();
      portal.close();
    }
  });
}
