// WebSocket transport: commands go up, frames come down; one WebSocket frame
// may carry several JSON objects separated by '\n'.

import { fail, parse } from './transport.js';
import type { Transport, TransportEnv } from './transport.js';

/** wsTransport opens GET /connect/ws. */
export function wsTransport(env: TransportEnv): Transport {
  const WS = env._o.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : null);
  if (!WS) throw fail(0, 'no WebSocket');
  const url = env._url.replace(/^http/, 'ws') + '/connect/ws' + (env._token ? '?token=' + encodeURIComponent(env._token) : '');
  const s = new WS(url);
  let done = false;
  s.onmessage = function (e: { data: unknown }) {
    const lines = String(e.data).split('\n');
    for (let i = 0; i < lines.length && !done; i++) {
      const f = lines[i] && parse(lines[i]);
      if (f) env._frame(f);
    }
  };
  s.onclose = function (e: { code?: number; reason?: string }) {
    if (done) return;
    done = true;
    env._end(e.code || 1006, e.reason || '');
  };
  return {
    // send writes at most 100 commands and max bytes per message: the
    // server refuses a message of more commands whole (400, see PROTOCOL.md
    // "Limits") and ends the connection for a larger one (3501), and a
    // reconnect subscribes every channel (up to maxChannels, 128 by default,
    // each with its since and maybe a token) at once. Lengths count UTF-16
    // units: several commands are subscribes, whose text is ASCII.
    send(cmds: object[], max?: number) {
      let out: string[] = [];
      let n = 0; // the length of out joined, plus one
      function flush() {
        try {
          if (out.length) s.send(out.join('\n'));
        } catch (e) {
          // A socket that closes under us reports it through onclose.
        }
        out = [];
        n = 0;
      }
      for (let i = 0; i < cmds.length; i++) {
        const c = JSON.stringify(cmds[i]);
        if (out.length === 100 || (max && n + c.length > max)) flush();
        out.push(c);
        n += c.length + 1;
      }
      flush();
    },
    close() {
      done = true;
      try {
        s.close();
      } catch (e) {
        // already closed
      }
    },
  };
}
