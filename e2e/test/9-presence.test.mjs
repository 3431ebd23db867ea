// Scenario 9: presence, join/leave and the server API with the bundled client
// in every browser engine (Chromium, Firefox, WebKit), over WebSocket and over
// SSE, and a long-poll page's lease.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';

import { ENGINES } from '../lib/engines.mjs';
import { scenario } from '../lib/harness.mjs';

const SECRET = 'e2e-presence-token-secret-0123456789abcdef';
const API_KEY = 'e2e-presence-api-key-0123456789';
const CHANNEL = 'room:e2e';

/** token mints an HS256 connection token for sub. */
function token(sub) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

async function api(server, method, route, body) {
  const res = await fetch(server.url + route, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const json = await res.json();
  assert.equal(res.status, 200, `${method} ${route}: ${JSON.stringify(json)}`);
  return json;
}

/** nodeClient joins the channel over WebSocket from Node, as user. */
function nodeClient(server, user) {
  return new Promise((resolve, reject) => {
    const sock = new WebSocket(`${server.url.replace('http', 'ws')}/connect/ws?token=${token(user)}`);
    const c = { sock, session: '' };
    sock.on('message', (data) => {
      for (const line of String(data).split('\n')) {
        const f = JSON.parse(line);
        if (f.type === 'hello') {
          c.session = f.session;
          sock.send(JSON.stringify({ type: 'subscribe', id: 1, channel: CHANNEL }));
        }
        if (f.type === 'subscribed') resolve(c);
      }
    });
    sock.on('error', reject);
  });
}

for (const engine of ENGINES) {
  scenario(`9 presence (${engine}): join and leave reach WebSocket and SSE pages; the server API disconnects and unsubscribes; a long-poll page is one entry until its lease ends`, async (h) => {
    if (!h.needEngine(engine)) return;
    const cfg = path.join(h.dir, 'presence.json');
    writeFileSync(cfg, JSON.stringify({
      apiKeys: [API_KEY],
      tokens: { keys: [{ secret: SECRET }] },
      // History lets a poll that starts just after a publication recover it.
      namespaces: [{ name: 'room', anonymous: true, presence: true, joinLeave: true, historySize: 10, historyTTL: '1m' }],
      presence: { pollLease: '2s' },
    }));
    const server = await h.startServer({ args: ['--config', cfg] });
    const wsPage = await h.openClient(server, { channel: CHANNEL, options: { token: token('alice'), transports: ['websocket'] } }, { engine });
    const ssePage = await h.openClient(server, { channel: CHANNEL, options: { token: token('bob'), transports: ['sse'] } }, { engine });

    let p = await api(server, 'GET', `/api/presence?channel=${CHANNEL}`);
    assert.deepEqual(p.clients.map((c) => c.user).sort(), ['alice', 'bob'], 'both pages are listed');
    // The page asks too, over its WebSocket.
    const fromPage = await wsPage.evaluate(() => window.e2eClient.subscription('room:e2e').presence());
    assert.deepEqual(fromPage.map((c) => c.user).sort(), ['alice', 'bob']);
    const stats = await wsPage.evaluate(() => window.e2eClient.subscription('room:e2e').presenceStats());
    assert.deepEqual([stats.clients, stats.users], [2, 2]);

    const carol = await nodeClient(server, 'carol');
    for (const page of [wsPage, ssePage]) {
      await h.waitFor('carol\'s join in the page', async () => (await h.pageState(page)).joins.some((j) => j.user === 'carol' && j.client === carol.session));
    }
    const chans = await api(server, 'GET', '/api/channels?prefix=room:');
    assert.deepEqual(chans.channels, [{ channel: CHANNEL, subscribers: 3 }]);
    carol.sock.close();
    for (const page of [wsPage, ssePage]) {
      await h.waitFor('carol\'s leave in the page', async () => (await h.pageState(page)).leaves.some((j) => j.client === carol.session));
    }
    p = await api(server, 'GET', `/api/presence?channel=${CHANNEL}`);
    assert.equal(p.clients.length, 2, 'presence drops to 2');

    await api(server, 'POST', '/api/unsubscribe', { user: 'bob', channel: CHANNEL });
    await h.waitFor('bob\'s page told it was unsubscribed', async () => (await h.pageState(ssePage)).unsubscribed.length === 1);
    assert.deepEqual((await h.pageState(ssePage)).unsubscribed, [{ channel: CHANNEL, code: 2000 }]);

    await api(server, 'POST', '/api/disconnect', { user: 'alice' });
    await h.waitFor('alice\'s page disconnected', async () => (await h.pageState(wsPage)).states.at(-1)?.state === 'disconnected');
    const st = await h.pageState(wsPage);
    assert.deepEqual(st.disconnects.map((d) => [d.code, d.reconnect]), [[3504, false]]);
    assert.equal(st.errors[0]?.code, 3504, 'a terminal disconnect is an error event');
    // It stays disconnected: the code is terminal, nothing reconnects it.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await h.pageState(wsPage)).states.at(-1).state, 'disconnected');
    p = await api(server, 'GET', `/api/presence?channel=${CHANNEL}`);
    assert.equal(p.clients.length, 0, 'nobody is left: bob unsubscribed, alice disconnected');

    // A long-poll page is one entry across its polls (each message answers
    // one), and leaves one lease (2 s here) after it stops polling.
    const pollPage = await h.openClient(server, { channel: CHANNEL, options: { token: token('dave'), transports: ['poll'] } }, { engine });
    p = await api(server, 'GET', `/api/presence?channel=${CHANNEL}`);
    assert.deepEqual(p.clients.map((c) => c.user), ['dave'], 'the long-poll page is listed');
    const dave = p.clients[0].client;
    const own = await pollPage.evaluate(() => ({ presenceId: window.e2eClient.presenceId, session: window.e2eClient.session }));
    assert.equal(own.presenceId, dave, 'the page knows the id it is listed under');
    assert.notEqual(own.session, dave, 'the listed id is not the session the polls claim it with');
    for (let i = 1; i <= 3; i++) {
      await api(server, 'POST', '/api/publish', { channel: CHANNEL, data: { n: i } });
      await h.waitMessages(pollPage, i, { settleMs: 0 });
    }
    p = await api(server, 'GET', `/api/presence?channel=${CHANNEL}`);
    assert.deepEqual(p.clients, [{ client: dave, user: 'dave' }], 'still one entry, under the same id, after several polls');
    await pollPage.close();
    await h.waitFor('the poller\'s lease to run out', async () => (await api(server, 'GET', `/api/presence?channel=${CHANNEL}`)).clients.length === 0);
  });
}
