// Sizes of the built bundles, minified and gzipped (level 9), with their budgets.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

// waterspout.js: 6.25 KB since presence, join/leave and the server's unsubscribe
// (issue 23) took it from 6,023 B to 6,199 B; the rest was already trimmed.
// waterspout.js 6.5 KB and waterspout.mjs 6.25 KB since the client review's
// fixes (token refusals read on long-poll, backoff reset after server
// disconnects, resubscribe, a poll refused for one channel, prototype-free
// maps, JSONP clean-up, publish queue cap) took them from 6,316 B to 6,549 B
// and from 6,107 B to 6,332 B.
// waterspout.js 6.75 KB and waterspout.mjs 6.5 KB since the second client
// review's fixes took them from 6,549 B to 6,870 B and from 6,332 B to
// 6,653 B (+321 B each): a subscription with its own token set aside, not
// ended, by a poll refusal (R1); subscribe commands split into frames of 100
// (L4); channel names and maxChannels checked at subscribe() (L2, the two
// reasons are most of it); a refused restart ends only its channel (L1); a
// resubscribe reopens the request (L3); the JSONP onload clean-up (L5); the
// generation check after the disconnect, error and state handlers (L6).
// waterspout.js 6.875 KB and waterspout.mjs 6.625 KB since the same review's
// last fix, WebSocket messages kept under the hello's maxMessageBytes (a
// reconnect's subscribes with their tokens could pass it, and 3501 is
// terminal), took them to 6,913 B and 6,693 B (+43 B, +40 B).
// waterspout.js 7 KB and waterspout.mjs 6.75 KB (+128 B each) since the
// third review's fixes took them from 6,913 B to 7,068 B and from 6,693 B to
// 6,849 B (+155 B, +156 B): no request without channels (WebSocket instead,
// with the backoff), a set-aside subscription told on the `error` event and
// probed for whatever upgradeInterval and the transport order, and `since`
// checked at subscribe().
export const budgets = { 'waterspout.js': 7 * 1024, 'waterspout.legacy.js': 9 * 1024, 'waterspout.mjs': 6.75 * 1024 };

export function sizes(dir) {
  return Object.keys(budgets).map((file) => {
    const buf = readFileSync(join(dir, file));
    return { file, bytes: buf.length, gzip: gzipSync(buf, { level: 9 }).length, budget: budgets[file] };
  });
}
