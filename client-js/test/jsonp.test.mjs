import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptJsonp } from '../.build/transport_jsonp.js';

// fakePage stands in for the window and document the default JSONP
// injector uses: it records the scripts inserted, the timers set and the
// load listeners, and dispatches load as a browser does (readyState is
// already 'complete' while the load handlers run).
function fakePage(readyState) {
  const p = { timers: [], load: [], inserted: [] };
  const head = {
    appendChild(s) {
      s.parentNode = head;
      p.inserted.push(s);
    },
    removeChild(s) {
      s.parentNode = null;
    },
  };
  p.document = { readyState, head, createElement: () => ({}) };
  p.window = {
    setTimeout: (f) => p.timers.push(f),
    addEventListener: (ev, f) => ev === 'load' && p.load.push(f),
  };
  p.fireLoad = () => {
    p.document.readyState = 'complete';
    for (const f of p.load) f();
  };
  p.runTimers = () => {
    while (p.timers.length) p.timers.shift()();
  };
  globalThis.window = p.window;
  globalThis.document = p.document;
  return p;
}

const first = 'https://push.example.com/connect/poll?channel=news';
const held = first + '&cursor=AQEEbmV3cwJlMQU';

test('jsonp: the first poll (no cursor) is inserted at once, even before load', () => {
  const p = fakePage('interactive');
  scriptJsonp(first, () => {});
  assert.equal(p.inserted.length, 1);
  assert.match(p.inserted[0].src, /&callback=__waterspout\d+$/);
});

test('jsonp: a held poll before load waits until after the load event, not inside it', () => {
  // WebKit counts a script inserted while load is dispatched as part of the
  // load, and each poll starts the next: the page would never finish loading.
  const p = fakePage('interactive');
  scriptJsonp(held, () => {});
  assert.equal(p.inserted.length, 0, 'not before load');
  p.fireLoad();
  assert.equal(p.inserted.length, 0, 'not inside the load handler');
  p.runTimers();
  assert.equal(p.inserted.length, 1, 'from a task of its own after load');
});

test('jsonp: a held poll after load (or from a load handler) goes from a task of its own', () => {
  const p = fakePage('complete');
  scriptJsonp(held, () => {});
  assert.equal(p.inserted.length, 0);
  p.runTimers();
  assert.equal(p.inserted.length, 1);
});

test('jsonp: a poll cancelled before its task runs is never inserted', () => {
  const p = fakePage('complete');
  const cancel = scriptJsonp(held, () => {});
  cancel();
  p.runTimers();
  assert.equal(p.inserted.length, 0);
});

// A page left open for days on JSONP makes a request per message batch or
// per held-poll timeout: each must leave no global behind.
const callbackOf = (s) => s.src.match(/callback=(\w+)$/)[1];

test('jsonp: an answered poll leaves no global callback and no script behind', () => {
  const p = fakePage('complete');
  const got = [];
  for (let i = 0; i < 3; i++) {
    scriptJsonp(first, (err, data) => got.push(data));
    const s = p.inserted[i];
    const name = callbackOf(s);
    window[name]({ messages: [], cursor: 'C' + i });
    assert.equal(name in window, false, 'callback ' + name + ' removed');
    assert.equal(s.parentNode, null);
  }
  assert.equal(got.length, 3);
  assert.deepEqual(Object.keys(window).filter((k) => k.startsWith('__waterspout')), []);
});

test('jsonp: a script that failed to load leaves no global callback behind', () => {
  const p = fakePage('complete');
  let err = null;
  scriptJsonp(first, (e) => (err = e));
  const s = p.inserted[0];
  s.onerror();
  assert.ok(err);
  assert.equal(callbackOf(s) in window, false);
});

test('jsonp: a cancelled poll leaves a callback only while its script may still run', () => {
  const p = fakePage('complete');
  // Cancelled before its task inserted it: nothing can call back.
  const never = scriptJsonp(held, () => assert.fail('cancelled'));
  never();
  p.runTimers();
  assert.deepEqual(Object.keys(window).filter((k) => k.startsWith('__waterspout')), []);
  // Cancelled in flight: a late script finds a function, which then goes.
  const cancel = scriptJsonp(first, () => assert.fail('cancelled'));
  const name = callbackOf(p.inserted[0]);
  cancel();
  assert.equal(typeof window[name], 'function');
  window[name]({ messages: [], cursor: 'late' });
  assert.equal(name in window, false);
});

test('jsonp: a script that loads and never calls back (a captive portal\'s HTML) leaves no global at cancel', () => {
  const p = fakePage('complete');
  const cancel = scriptJsonp(first, () => assert.fail('no answer'));
  const s = p.inserted[0];
  const name = s.src.match(/callback=(\w+)/)[1];
  s.onload(); // the HTML ran as a script: a SyntaxError, no callback, no onerror
  cancel(); // the poll timed out
  assert.equal(name in window, false);
  assert.equal(s.parentNode, null);
});

test('jsonp: a cancelled script that then loads without calling back leaves no global', () => {
  const p = fakePage('complete');
  const cancel = scriptJsonp(first, () => assert.fail('no answer'));
  const s = p.inserted[0];
  const name = s.src.match(/callback=(\w+)/)[1];
  cancel();
  assert.equal(typeof window[name], 'function', 'a late answer must find a function');
  s.onload();
  assert.equal(name in window, false);
});
