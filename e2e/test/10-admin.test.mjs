// Scenario 10: the operator's live view at /admin, in every browser engine
// (Chromium, Firefox, WebKit), as an operator uses it: a wrong secret is
// refused and asked for again, the right one opens the view, and the
// session count goes from 0 to 1 when a client connects and back to 0 when
// it leaves. The secret stays in the tab's sessionStorage, never in a
// cookie or the URL. The screenshots are kept at
// e2e/artifacts/admin-<engine>.png.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import WebSocket from 'ws';

import { ENGINES } from '../lib/engines.mjs';
import { ARTIFACTS, scenario } from '../lib/harness.mjs';

/** text returns the textContent of the element selector names (null when there is none). */
function text(page, selector) {
  return page.evaluate((s) => {
    const el = document.querySelector(s);
    return el ? el.textContent : null;
  }, selector);
}

/** shown reports whether the element selector names is displayed. */
function shown(page, selector) {
  return page.evaluate((s) => {
    const el = document.querySelector(s);
    if (!el) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden';
  }, selector);
}

for (const engine of ENGINES) {
  scenario(`10 admin page (${engine}): the secret opens it, the session count follows a client`, async (h) => {
    if (!h.needEngine(engine)) return;
    const secret = randomBytes(32).toString('base64');
    const file = path.join(h.dir, 'admin-secret');
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    const server = await h.startServer({ args: ['--admin-secret-file', file] });
    const page = await h.browserPage(engine);
    await page.goto(`${server.url}/admin`);

    const detail = async () => `#updated: ${await text(page, '#updated')}; #error: ${await text(page, '#error')}; ` +
      `#sessions-total: ${await text(page, '#sessions-total')}`;

    // A wrong secret: refused, the form is shown again with the reason.
    await h.waitFor('the login form', () => shown(page, '#secret'), { detail });
    await page.fill('#secret', `${secret.slice(0, -2)}xx`);
    await page.click('#enter');
    await h.waitFor('the 401 shown', async () => /401/.test(await text(page, '#error')) && shown(page, '#secret'), { detail });
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused secret is not kept');

    // The right one: the view, with no session yet.
    await page.fill('#secret', secret);
    await page.click('#enter');
    await h.waitFor('the view with 0 sessions', async () => (await text(page, '#sessions-total')) === '0', { detail });
    assert.match(await text(page, '#updated'), /^Last updated /);
    assert.equal(await shown(page, '#error'), false, 'no error shown');
    assert.equal(await shown(page, '#secret'), false, 'the form is gone');
    const kept = await page.evaluate(() => ({
      stored: Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)),
      cookie: document.cookie,
      url: location.href,
    }));
    assert.deepEqual(kept.stored, [secret], 'the secret is in sessionStorage');
    assert.equal(kept.cookie, '', 'no cookie');
    assert.ok(!kept.url.includes(secret.slice(0, 8)), `the URL holds no secret: ${kept.url}`);

    // A client connects: 1 session, on ws; it leaves: 0 again.
    const sock = new WebSocket(`ws://127.0.0.1:${server.port}/connect/ws`);
    await new Promise((resolve, reject) => {
      sock.once('message', resolve); // hello
      sock.once('error', reject);
    });
    await h.waitFor('the view with 1 session', async () => (await text(page, '#sessions-total')) === '1', { detail });
    const transports = await page.evaluate(() =>
      [...document.querySelectorAll('#sessions tbody tr')].map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.deepEqual(transports, [['ws', '1']]);

    const shot = path.join(ARTIFACTS, `admin-${engine}.png`);
    rmSync(shot, { force: true });
    await page.screenshot(shot);
    assert.ok(existsSync(shot), `the screenshot was saved to ${shot}`);
    h.note(`screenshot: ${shot}`);

    sock.close();
    await h.waitFor('the view back to 0 sessions', async () => (await text(page, '#sessions-total')) === '0', { detail });
  });
}
