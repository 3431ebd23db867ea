// SSE transport: GET /connect/sse with the channel set and a cursor in the URL.
// Every frame is one unnamed event, so onmessage sees them all.
//
// The client, not the browser, reconnects: on error the EventSource is closed
// and the client reopens it with a cursor built from its positions, which is
// what Last-Event-ID would carry anyway, and keeps one reconnect policy for
// every transport.

import { fail, parse, query } from './transport.js';
import type { Transport, TransportEnv } from './transport.js';

/** sseTransport opens an EventSource. */
export function sseTransport(env: TransportEnv): Transport {
  const ES = env._o.EventSource || (typeof EventSource !== 'undefined' ? EventSource : null);
  if (!ES) throw fail(0, 'no EventSource');
  const es = new ES(env._url + '/connect/sse?' + query(env, env._cursor()));
  let done = false;
  function close() {
    done = true;
    try {
      es.close();
    } catch (e) {
      // already closed
    }
  }
  es.onmessage = function (e: { data: string }) {
    const f = !done && parse(e.data);
    if (f) env._frame(f);
  };
  es.onerror = function () {
    if (done) return;
    close();
    env._end(1006, 'sse error');
  };
  return { close };
}
