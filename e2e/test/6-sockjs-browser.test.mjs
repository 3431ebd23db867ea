// Scenario 6: the stock sockjs-client (npm) in every browser engine
// (Chromium, Firefox, WebKit) against /connect/sockjs, over SockJS's
// WebSocket and over two of its HTTP transports, as an existing SockJS
// application would use it.

import assert from 'node:assert/strict';

import { ENGINES } from '../lib/engines.mjs';
import { scenario } from '../lib/harness.mjs';
import { assertSequence, publishNumbered } from '../lib/stream.mjs';

const N = 100;

// xhr-polling also covers a race inside igm/sockjs-go v3.0.3: it detaches an
// answered poll in a goroutine of its own, and a next poll that arrives first
// is told c[2010,"Another connection still open"]. transports/sockjs serves
// such a poll again (retryPoll in upstream.go); without that, this scenario
// lost the connection within a few dozen messages, about one run in three.
for (const transport of ['websocket', 'xhr-streaming', 'xhr-polling']) {
  for (const engine of ENGINES) {
    scenario(`6 sockjs-client in the browser (${engine}) over ${transport}: receives hello and a numbered stream`, async (h) => {
      if (!h.needEngine(engine)) return;
      const server = await h.startServer();
      const channel = `e2e-sockjs-${transport}`;
      const page = await h.browserPage(engine);
      await h.openTestPage(page, server, 'sockjs.html', { channel, transports: [transport] });
      await h.waitFor('the SockJS subscription', async () => (await h.pageState(page)).subscribed, {
        detail: async () => JSON.stringify(await h.pageState(page)),
      });
      let st = await h.pageState(page);
      assert.equal(st.transport, transport, 'sockjs-client used the transport asked for');
      assert.equal(st.hello.transport, 'sockjs');
      assert.ok(st.hello.session && st.hello.ping > 0, `hello names a session and a heartbeat: ${JSON.stringify(st.hello)}`);
      assert.equal(st.subscribed.channel, channel);
      assert.equal(st.subscribed.id, 1);

      await publishNumbered(server.url, channel, { to: N });
      await h.waitFor(`${N} messages over SockJS ${transport}`, async () => {
        const s = await h.pageState(page);
        if (s.closed) {
          throw Object.assign(new Error(`the SockJS connection closed after ${s.messages.length} messages: ${JSON.stringify(s.closed)}`), { fatal: true });
        }
        return s.messages.length >= N;
      }, {
        detail: async () => JSON.stringify(await h.pageState(page)),
      });
      st = await h.pageState(page);
      assertSequence(st.messages.map((m) => m.n), N, `sockjs-client over ${transport} in ${engine}`);
      assert.deepEqual(st.errors, []);
      assert.equal(st.closed, null, 'the connection stayed open');
    });
  }
}
