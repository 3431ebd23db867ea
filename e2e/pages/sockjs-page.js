// Talks to WaterSpout's SockJS endpoint with the stock sockjs-client, as an
// existing SockJS application would: the JSON commands are those of the
// WebSocket transport, and one SockJS message may hold several JSON objects
// separated by "\n". Everything seen is recorded in window.e2e.
(function () {
  'use strict';
  var config = JSON.parse(decodeURIComponent(location.hash.slice(1)) || '{}');
  var e2e = window.e2e = { config: config, frames: [], hello: null, subscribed: null, messages: [], errors: [], closed: null, transport: null };
  var opts = config.transports ? { transports: config.transports } : {};
  var sock = new window.SockJS(window.e2eServer + '/connect/sockjs', null, opts);
  sock.onopen = function () {
    e2e.transport = sock.transport;
    document.getElementById('transport').textContent = sock.transport;
  };
  sock.onmessage = function (ev) {
    var parts = String(ev.data).split('\n');
    for (var i = 0; i < parts.length; i++) {
      if (!parts[i]) continue;
      var f;
      try { f = JSON.parse(parts[i]); } catch (err) { e2e.errors.push('not JSON: ' + parts[i]); continue; }
      e2e.frames.push(f.type);
      if (f.type === 'hello') {
        e2e.hello = f;
        sock.send(JSON.stringify({ type: 'subscribe', id: 1, channel: config.channel }));
      } else if (f.type === 'subscribed') {
        e2e.subscribed = f;
      } else if (f.type === 'message') {
        e2e.messages.push({ n: f.data && f.data.n, offset: f.offset });
        document.getElementById('count').textContent = String(e2e.messages.length);
      } else if (f.type === 'error' || f.type === 'disconnect') {
        e2e.errors.push(f);
      }
    }
  };
  sock.onclose = function (ev) { e2e.closed = { code: ev.code, reason: ev.reason }; };
})();
