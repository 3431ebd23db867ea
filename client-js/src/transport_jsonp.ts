// JSONP transport: the long-poll loop, each request a <script> with callback=.

import { pollLoop } from './transport_poll.js';
import { fail } from './transport.js';
import type { Transport, TransportEnv } from './transport.js';
import type { JsonpInjector } from './types.js';

let seq = 0;

/** scriptJsonp is the default JSONP injector: a <script> tag and a global callback. */
export const scriptJsonp: JsonpInjector = function (url, done) {
  const w: any = window;
  const d = document;
  const name = '__waterspout' + ++seq;
  const s: any = d.createElement('script');
  let over = false;
  let loaded = false;
  function drop() {
    delete w[name];
  }
  // end is also the cancel function (called without ran). A page open for
  // days makes a request per poll: each must leave no global behind. A
  // cancelled script that was inserted may still arrive, and must find a
  // function, which then removes itself. One that loaded and never called
  // back (a captive portal's HTML page is a SyntaxError, and no onerror)
  // will not run again: its global goes now.
  function end(ran?: boolean) {
    over = true;
    if (s.parentNode && !ran && !loaded) w[name] = s.onerror = drop;
    else drop();
    if (s.parentNode) s.parentNode.removeChild(s);
  }
  s.onload = function () {
    loaded = true;
    if (over) drop();
  };
  w[name] = function (data: unknown) {
    if (over) return;
    end(true);
    done(null, data);
  };
  s.onerror = function () {
    if (over) return;
    end(true);
    done(fail(0, 'jsonp error'));
  };
  s.async = true;
  s.src = url + '&callback=' + name;
  function go() {
    if (!over) (d.head || d.getElementsByTagName('head')[0]).appendChild(s);
  }
  // A script inserted before the page's load event delays it, and a held
  // poll is answered only when a message comes: the page would never finish
  // loading. WebKit also counts a script inserted while the load event is
  // being dispatched (readyState is already 'complete' then) as part of the
  // load, and each poll then starts the next: so a held poll is inserted
  // from a task of its own, after load. The first poll (no cursor) answers
  // at once, so only held polls wait.
  function later() {
    w.setTimeout(go, 0);
  }
  if (url.indexOf('cursor=') < 0) go();
  else if (d.readyState == 'complete') later();
  else w.addEventListener('load', later);
  return end;
};

/** jsonpTransport long-polls through script tags. */
export function jsonpTransport(env: TransportEnv): Transport {
  const inject = env._o.jsonp || (typeof document !== 'undefined' && typeof window !== 'undefined' ? scriptJsonp : null);
  if (!inject) throw fail(0, 'no JSONP');
  return pollLoop(env, function (url, q, done) {
    return inject(url + '?' + q, function (err, data) {
      done(err ? null : (data as any));
    });
  });
}
