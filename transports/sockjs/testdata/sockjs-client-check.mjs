// sockjs-client-check.mjs checks the SockJS endpoint with the npm package
// sockjs-client, a client this project did not write.
//
//   node sockjs-client-check.mjs <url> <channel> <count> [transport...]
//
// <url> is the SockJS endpoint (http://127.0.0.1:8080/connect/sockjs). The
// script subscribes to <channel> once the hello frame arrives, writes
// "subscribed" to stderr when the subscription is in place, then writes the
// data of each message as one line of JSON to stdout, and exits 0 after
// <count> messages. Transports (websocket, xhr-streaming, xhr-polling…)
// restrict sockjs-client to those; by default it picks as a browser would.
// It exits 1 on an error frame, a disconnect, a gap in offsets, an early
// close, or after SOCKJS_CHECK_TIMEOUT_MS (default 30000) milliseconds.
//
// sockjs-client is found through NODE_PATH (or a node_modules beside this
// file): createRequire, because NODE_PATH does not apply to ES imports.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const SockJS = require('sockjs-client');

const [url, channel, countArg, ...transports] = process.argv.slice(2);
const count = Number(countArg);
if (!url || !channel || !Number.isInteger(count) || count < 1) {
  process.stderr.write('usage: node sockjs-client-check.mjs <url> <channel> <count> [transport...]\n');
  process.exit(2);
}
const timeoutMs = Number(process.env.SOCKJS_CHECK_TIMEOUT_MS || 30000);

let received = 0;
let last = null; // {epoch, offset} of the last message delivered
let done = false;

function fail(why) {
  if (done) return;
  done = true;
  process.stderr.write(`sockjs-client-check: ${why}\n`);
  process.exit(1);
}

const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms with ${received}/${count} messages`), timeoutMs);
const sock = new SockJS(url, null, transports.length > 0 ? { transports } : {});

sock.onmessage = (event) => {
  // One SockJS message may carry several frames separated by "\n".
  for (const line of String(event.data).split('\n')) {
    if (line === '' || done) continue;
    let frame;
    try {
      frame = JSON.parse(line);
    } catch (err) {
      fail(`not a JSON frame: ${line.slice(0, 80)}`);
      return;
    }
    switch (frame.type) {
      case 'hello':
        sock.send(JSON.stringify({ type: 'subscribe', id: 1, channel }));
        break;
      case 'subscribed':
        last = { epoch: frame.epoch, offset: frame.offset };
        process.stderr.write(`subscribed\n`);
        break;
      case 'message':
        if (last && frame.epoch === last.epoch && frame.offset <= last.offset) break; // seen: drop
        if (last && (frame.epoch !== last.epoch || frame.offset !== last.offset + 1)) {
          fail(`gap: offset ${frame.offset} (${frame.epoch}) after ${last.offset} (${last.epoch})`);
          return;
        }
        last = { epoch: frame.epoch, offset: frame.offset };
        process.stdout.write(JSON.stringify(frame.data) + '\n');
        received++;
        if (received >= count) {
          done = true;
          clearTimeout(timer);
          sock.close();
          // Let stdout drain before leaving.
          process.stdout.write('', () => process.exit(0));
        }
        break;
      case 'error':
        fail(`error frame: ${line}`);
        return;
      case 'disconnect':
        fail(`disconnected: ${frame.code} ${frame.reason}`);
        return;
      default: // ping, reply, and frame types added later
    }
  }
};

sock.onclose = (event) => {
  if (!done) fail(`closed early: ${event.code} ${event.reason}`);
};
