// Long-poll transport over XHR, and the poll loop the JSONP transport shares.
//
// A poll session starts with a request without cursor, which the server
// answers at once with hello and subscribed frames: that proves the path works
// within the hello timeout. When the client already has positions (a
// reconnect or a transport switch), the subscribed frames of that first answer
// for those channels are dropped and the next request carries the client's own
// cursor, so the server replays from there (or says recovered:false).

import { fail, query } from './transport.js';
import type { Transport, TransportEnv, Resolved } from './transport.js';
import type { Frame } from './types.js';

/** PollAnswer is the body of a long-poll response, or the error that refused it. */
export interface PollAnswer {
  messages: Frame[];
  cursor: string;
  error?: { code: number; reason: string };
}

/** Requester performs one poll: it calls done(answer) or done(null) on failure and returns a cancel function. */
export type Requester = (url: string, q: string, done: (a: PollAnswer | null) => void) => () => void;

/**
 * xhr sends one request and calls done(status, parsed JSON body or undefined).
 * It returns an abort function.
 */
export function xhr(o: Resolved, method: string, url: string, body: string | null, type: string | null, done: (status: number, body: any) => void): () => void {
  const X = o.XMLHttpRequest;
  if (!X) throw fail(0, 'no XMLHttpRequest');
  const x = new X();
  const noop = function () {};
  x.open(method, url, true);
  if (type) x.setRequestHeader('Content-Type', type);
  x.onreadystatechange = function () {
    if (x.readyState !== 4) return;
    x.onreadystatechange = noop;
    let r;
    try {
      r = JSON.parse(x.responseText);
    } catch (e) {
      // not JSON: r stays undefined
    }
    done(x.status, r);
  };
  x.send(body);
  return function () {
    x.onreadystatechange = noop;
    try {
      x.abort();
    } catch (e) {
      // nothing to abort
    }
  };
}

/** pollLoop runs a long-poll session over a requester. */
export function pollLoop(env: TransportEnv, request: Requester): Transport {
  const o = env._o;
  const have = env._pos;
  let resume = false;
  for (const k in have) resume = true;
  let first = true;
  let cursor = '';
  // The first answer's hello names this client in presence: later polls
  // send it back as client=, so the server keeps one entry for them all.
  let id = '';
  let done = false;
  let cancel: (() => void) | null = null;
  let timer: any;

  function stop() {
    done = true;
    o.clearTimeout(timer);
    if (cancel) cancel();
    cancel = null;
  }

  function next() {
    timer = o.setTimeout(function () {
      if (done) return;
      stop();
      env._end(1006, 'poll timeout');
    }, first ? o.helloTimeout : o.pollTimeout);
    cancel = request(env._url + '/connect/poll', query(env, cursor) + (id ? '&client=' + id : ''), function (a) {
      cancel = null;
      o.clearTimeout(timer);
      if (done) return;
      // A refusal (origin not allowed, invalid token, rate limited) ends the
      // transport with its HTTP status and reason, which the client reports.
      const e = a && a.error;
      if (e || !a || !a.messages || typeof a.cursor !== 'string') {
        done = true;
        env._end(e ? e.code : 1006, e ? e.reason : 'poll error');
        return;
      }
      for (let i = 0; i < a.messages.length && !done; i++) {
        const f = a.messages[i] || {}; // a null entry must not stop the loop
        if (f.type === 'hello') id = encodeURIComponent(f.session!);
        if (!(first && resume && f.type === 'subscribed' && have[f.channel!])) env._frame(f);
      }
      if (done) return;
      cursor = first && resume ? env._cursor() : a.cursor;
      first = false;
      next();
    });
  }

  next();
  return { close: stop };
}

/** pollTransport long-polls with XHR; a channel list too long for a URL goes as a POST form. */
export function pollTransport(env: TransportEnv): Transport {
  const o = env._o;
  if (!o.XMLHttpRequest) throw fail(0, 'no XMLHttpRequest');
  return pollLoop(env, function (url, q, done) {
    const long = q.length > 1800;
    return xhr(o, long ? 'POST' : 'GET', long ? url : url + '?' + q, long ? q : null, long ? 'application/x-www-form-urlencoded' : null, function (status, body) {
      done(status === 200 || (body && body.error) ? body : null);
    });
  });
}
