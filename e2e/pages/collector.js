// The e2e test page's script: it subscribes one channel with the bundled
// client and records everything the application would see in window.e2e,
// which the tests read. ES5 only, and no Promise, fetch, WebSocket or
// EventSource: the legacy scenario deletes them before this runs.
(function () {
  'use strict';
  var config = window.e2eConfig; // config.js ran first
  function now() { return new Date().getTime(); }
  function show(id, text) { var el = document.getElementById(id); if (el) el.textContent = text; }

  var e2e = window.e2e = {
    config: config,
    started: now(),
    messages: [],     // {n, phase, offset, epoch} per delivered message, in arrival order
    transports: [],   // {name, hello transport, at} per `transport` event
    states: [],
    recoveries: [],   // every `recovery` event
    subscribed: [],   // every subscribed callback
    disconnects: [],
    errors: [],
    joins: [],        // {client, user} per join, then leave, then unsubscribed frame
    leaves: [],
    unsubscribed: [],
    loadedAt: null    // when the window's load event fired (a held JSONP poll must not hold it)
  };
  window.addEventListener('load', function () { e2e.loadedAt = now(); });

  if (config.slowImageMs) {
    // Something slow on the page (an ad, a large image) holds its load event.
    var img = document.createElement('img');
    img.src = '/slow?ms=' + config.slowImageMs;
    img.alt = '';
    document.body.appendChild(img);
  }

  if (!window.WaterSpout || typeof window.WaterSpout.Client !== 'function') {
    e2e.errors.push({ message: 'the client bundle did not load' });
    return;
  }
  var client = window.e2eClient = new window.WaterSpout.Client(window.e2eServer, config.options || {});
  client.on('state', function (s) { e2e.states.push({ state: s, at: now() }); show('state', s); });
  client.on('transport', function (name, hello) {
    e2e.transports.push({ name: name, hello: hello && hello.transport, session: hello && hello.session, at: now() });
    show('transport', name);
  });
  client.on('recovery', function (r) {
    // atMessage: how many messages the application had seen when told.
    var rec = { atMessage: e2e.messages.length };
    for (var k in r) if (Object.prototype.hasOwnProperty.call(r, k)) rec[k] = r[k];
    e2e.recoveries.push(rec);
  });
  client.on('disconnect', function (d) { e2e.disconnects.push({ code: d.code, reason: d.reason, reconnect: d.reconnect, at: now() }); });
  client.on('error', function (err) { e2e.errors.push({ code: err && err.code, reason: err && err.reason, message: String(err && err.message) }); });
  client.subscribe(config.channel || 'e2e', {
    message: function (data, ctx) {
      e2e.messages.push({ n: data && data.n, phase: data && data.phase, offset: ctx.offset, epoch: ctx.epoch });
      show('count', String(e2e.messages.length));
    },
    subscribed: function (ctx) {
      e2e.subscribed.push({ channel: ctx.channel, epoch: ctx.epoch, offset: ctx.offset, recovered: ctx.recovered });
    },
    error: function (err) { e2e.errors.push({ code: err && err.code, reason: err && err.reason, subscription: true }); },
    join: function (i) { e2e.joins.push({ client: i.client, user: i.user }); },
    leave: function (i) { e2e.leaves.push({ client: i.client, user: i.user }); },
    unsubscribed: function (u) { e2e.unsubscribed.push({ channel: u.channel, code: u.code }); }
  });
  client.connect();
})();
