// Scenario 7: the demo page the server serves at / works as a person would
// use it: subscribe through its form, publish through its form, see the
// message. The screenshot is kept at e2e/artifacts/demo.png.

import assert from 'node:assert/strict';
import path from 'node:path';

import { ARTIFACTS, scenario } from '../lib/harness.mjs';

scenario('7 demo page: subscribe and publish through its forms, the message shows up', async (h) => {
  if (!h.need('chromium')) return;
  const server = await h.startServer();
  const page = await h.newPage();
  await page.goto(`${server.url}/`);

  await page.fill('#channel', 'e2e-demo');
  await page.click('#connect');
  await page.waitForFunction(() => document.querySelector('#subscribed').textContent.startsWith('e2e-demo'));
  assert.equal(await page.textContent('#state'), 'connected');
  assert.equal(await page.textContent('#transport'), 'websocket');
  assert.equal(await page.inputValue('#publish-channel'), 'e2e-demo', 'the publish form follows the subscribed channel');

  const text = `hello from the e2e suite ${process.pid}-${Date.now()}`;
  await page.fill('#publish-data', JSON.stringify({ text }));
  await page.click('#publish');
  await page.waitForFunction(() => /^Published to e2e-demo at offset 1\b/.test(document.querySelector('#publish-result').textContent));
  await page.waitForFunction((t) => document.querySelector('#messages').textContent.includes(t), text);

  const shot = path.join(ARTIFACTS, 'demo.png');
  await page.screenshot({ path: shot, fullPage: true });
  // What the screenshot shows is what the DOM held at that moment.
  const items = await page.$$eval('#messages li', (lis) => lis.map((li) => li.textContent));
  assert.equal(items.length, 1, `one message listed: ${JSON.stringify(items)}`);
  assert.ok(items[0].includes(text), `the published text is listed: ${items[0]}`);
  assert.match(items[0], /e2e-demo · offset 1/);
  assert.equal(await page.isHidden('#error'), true, 'no error shown');
  h.note(`screenshot: ${shot}`);
});
