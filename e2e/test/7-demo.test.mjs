// Scenario 7: the demo page the server serves at / works as a person would
// use it, in every browser engine (Chromium, Firefox, WebKit): subscribe
// through its form, publish through its form, see the message. The
// screenshots are kept at e2e/artifacts/demo-<engine>.png.

import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';

import { ENGINES } from '../lib/engines.mjs';
import { ARTIFACTS, scenario } from '../lib/harness.mjs';

/** text returns the textContent of the element selector names (null when there is none). */
function text(page, selector) {
  return page.evaluate((s) => document.querySelector(s)?.textContent ?? null, selector);
}

for (const engine of ENGINES) {
  scenario(`7 demo page (${engine}): subscribe and publish through its forms, the message shows up`, async (h) => {
    if (!h.needEngine(engine)) return;
    const server = await h.startServer();
    const page = await h.browserPage(engine);
    await page.goto(`${server.url}/`);

    await page.fill('#channel', 'e2e-demo');
    await page.click('#connect');
    await h.waitFor('the demo page subscribed', async () => (await text(page, '#subscribed')).startsWith('e2e-demo'), {
      detail: async () => `#subscribed: ${await text(page, '#subscribed')}; #error: ${await text(page, '#error')}`,
    });
    assert.equal(await text(page, '#state'), 'connected');
    assert.equal(await text(page, '#transport'), 'websocket');
    assert.equal(await page.evaluate(() => document.querySelector('#publish-channel').value), 'e2e-demo',
      'the publish form follows the subscribed channel');

    const sent = `hello from the e2e suite ${process.pid}-${Date.now()}`;
    await page.fill('#publish-data', JSON.stringify({ text: sent }));
    await page.click('#publish');
    await h.waitFor('the publish result', async () => /^Published to e2e-demo at offset 1\b/.test(await text(page, '#publish-result')), {
      detail: async () => `#publish-result: ${await text(page, '#publish-result')}`,
    });
    await h.waitFor('the message in the list', async () => (await text(page, '#messages')).includes(sent), {
      detail: async () => `#messages: ${await text(page, '#messages')}`,
    });

    const shot = path.join(ARTIFACTS, `demo-${engine}.png`);
    rmSync(shot, { force: true });
    await page.screenshot(shot);
    assert.ok(existsSync(shot), `the screenshot was saved to ${shot}`);
    // What the screenshot shows is what the DOM held at that moment.
    const { items, errorShown } = await page.evaluate(() => {
      const err = document.querySelector('#error');
      const r = err.getBoundingClientRect();
      return {
        items: [...document.querySelectorAll('#messages li')].map((li) => li.textContent),
        // Shown as Playwright's isVisible has it: a box of some size, not visibility:hidden.
        errorShown: r.width > 0 && r.height > 0 && getComputedStyle(err).visibility !== 'hidden',
      };
    });
    assert.equal(items.length, 1, `one message listed: ${JSON.stringify(items)}`);
    assert.ok(items[0].includes(sent), `the published text is listed: ${items[0]}`);
    assert.match(items[0], /e2e-demo · offset 1/);
    assert.equal(errorShown, false, 'no error shown');
    h.note(`screenshot: ${shot}`);
  });
}
