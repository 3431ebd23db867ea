// Scenario 4: an ES5-era browser. The page loses WebSocket, EventSource,
// fetch and Promise before anything runs, then loads the legacy bundle; it
// must still receive every message. Without XMLHttpRequest as well (an old
// browser that cannot make cross-origin XHR), the client polls over JSONP.

import assert from 'node:assert/strict';

import { scenario } from '../lib/harness.mjs';
import { assertSequence, publishNumbered } from '../lib/stream.mjs';

const N = 50;

// Runs in the page before any of its scripts.
function oldBrowser(removeXHR) {
  for (const name of ['WebSocket', 'EventSource', 'fetch', 'Promise', ...(removeXHR ? ['XMLHttpRequest'] : [])]) {
    delete window[name];
  }
}

const cases = [
  { title: 'XHR long-polling', removeXHR: false, transport: 'poll', hello: 'poll' },
  { title: 'JSONP when XMLHttpRequest is gone too', removeXHR: true, transport: 'jsonp', hello: 'jsonp' },
];

for (const c of cases) {
  scenario(`4 old browser, legacy bundle without WebSocket, EventSource, fetch, Promise: ${c.title}`, async (h) => {
    if (!h.need('chromium')) return;
    const server = await h.startServer();
    const channel = `e2e-legacy-${c.transport}`;
    const page = await h.openClient(server, { channel }, {
      file: 'legacy.html',
      initScript: { content: `(${oldBrowser})(${c.removeXHR});` },
    });

    // The page really runs without them (Playwright evaluates in the page's
    // own world, so this sees what the client saw).
    const gone = await page.evaluate(() => ({
      WebSocket: typeof WebSocket, EventSource: typeof EventSource, fetch: typeof fetch,
      Promise: typeof Promise, XMLHttpRequest: typeof XMLHttpRequest,
    }));
    assert.deepEqual(gone, {
      WebSocket: 'undefined', EventSource: 'undefined', fetch: 'undefined', Promise: 'undefined',
      XMLHttpRequest: c.removeXHR ? 'undefined' : 'function',
    });

    let st = await h.pageState(page);
    assert.deepEqual(st.transports.map((t) => [t.name, t.hello]), [[c.transport, c.hello]]);

    await publishNumbered(server.url, channel, { to: N });
    const got = await h.waitMessages(page, N);
    assertSequence(got.map((m) => m.n), N, `legacy page over ${c.transport}`);
    st = await h.pageState(page);
    assert.deepEqual(st.errors, []);
  });
}

// A page whose long-poll is a pending <script> must still finish loading:
// every script inserted before the load event delays it, so a JSONP client
// that starts its held polls before `load` keeps the page "loading" (spinner,
// no onload handlers) for as long as it polls.
scenario('4 old browser on JSONP: the page still reaches its load event', async (h) => {
  if (!h.need('chromium')) return;
  // Short held polls, so that several come and go while we watch.
  const server = await h.startServer({ args: ['--poll-timeout', '2s'] });
  const page = await h.openClient(server, { channel: 'e2e-jsonp-load', slowImageMs: 1000 }, {
    file: 'legacy.html',
    initScript: { content: `(${oldBrowser})(true);` },
  });
  const st = await h.pageState(page);
  assert.equal(st.transports[0]?.name, 'jsonp');
  await h.waitFor('document.readyState to be complete', () => page.evaluate(() => document.readyState === 'complete'), {
    timeout: 10_000,
    detail: async () => `readyState ${await page.evaluate(() => document.readyState)}`,
  });
});
