// The operator's live view of a WaterSpout node: asks for the admin secret,
// keeps it in this tab's sessionStorage (never a cookie, never a URL), and
// polls GET /admin/state every 2 s with it as a Bearer credential. Plain
// ES2017 and the DOM; every value reaches the page through textContent
// (channel names are chosen by clients).
'use strict';

(function () {
  var KEY = 'waterspout.admin.secret';
  var EVERY = 2000; // ms between the end of one poll and the next
  var TIMEOUT = 10000; // ms a poll may take
  var timer = 0;
  var generation = 0; // bumped on login and logout, so a late answer is ignored

  function $(id) { return document.getElementById(id); }

  function storedSecret() {
    try { return sessionStorage.getItem(KEY) || ''; } catch (e) { return ''; }
  }
  function storeSecret(s) {
    try {
      if (s) sessionStorage.setItem(KEY, s); else sessionStorage.removeItem(KEY);
    } catch (e) { /* storage refused (private mode): the secret lives as long as the page */ }
    memory = s;
  }
  var memory = storedSecret();

  function showError(text) {
    var el = $('error');
    el.textContent = text || '';
    el.hidden = !text;
  }

  function askSecret(reason) {
    clearTimeout(timer);
    generation++;
    storeSecret('');
    $('login').hidden = false;
    $('logout').hidden = true;
    $('updated').textContent = 'not connected';
    showError(reason || '');
    $('secret').value = '';
    $('secret').focus();
  }

  function cell(tr, text, num) {
    var td = document.createElement('td');
    td.textContent = text === undefined || text === null ? '' : String(text);
    if (num) td.className = 'num';
    tr.appendChild(td);
    return td;
  }

  // fill replaces the rows of table id's body; each row is a list of cells,
  // numbers right-aligned.
  function fill(id, rows) {
    var body = $(id).tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    rows.forEach(function (row) {
      var tr = document.createElement('tr');
      row.forEach(function (v) { cell(tr, v, typeof v === 'number'); });
      body.appendChild(tr);
    });
  }

  function entries(obj) {
    return Object.keys(obj || {}).sort().map(function (k) { return [k, obj[k]]; });
  }

  function duration(seconds) {
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
    var m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + (d || h || m ? m + 'm ' : '') + s + 's';
  }

  function mib(bytes) { return (bytes / 1048576).toFixed(1) + ' MiB'; }

  function render(st) {
    var n = st.node, b = st.broker, ch = st.channels, c = st.counters;
    fill('node', [
      ['version', n.version], ['Go', n.go], ['started', new Date(n.started).toLocaleString()],
      ['uptime', duration(n.uptimeSeconds)], ['goroutines', n.goroutines], ['heap in use', mib(n.heapInUseBytes)],
    ]);
    var brokerRows = [['broker', b.name], ['ready', b.ready ? 'yes' : 'no: ' + b.reason]];
    if (b.channelStates !== undefined) brokerRows.push(['channel states held', b.channelStates]);
    if (b.nodesError) brokerRows.push(['nodes', 'unknown: ' + b.nodesError]);
    fill('broker', brokerRows);
    $('broker').tBodies[0].rows[1].cells[1].className = b.ready ? 'ok' : 'bad';
    var nodes = b.nodes || [];
    $('nodes').hidden = nodes.length === 0;
    fill('nodes', nodes.map(function (x) {
      return [x.id, new Date(x.heartbeat).toLocaleTimeString(), x.self ? 'this node' : ''];
    }));
    $('scope').textContent = b.name === 'memory'
      ? 'This node only: the memory broker serves one process, so this node is the whole server.'
      : 'Sessions and counters: this node only (open this page on each node, or use /metrics for all). ' +
        'Channels: every node sharing Redis, as GET /api/channels counts them. Nodes: ' + nodes.length + ' alive.';

    $('sessions-total').textContent = String(st.sessions.total);
    fill('sessions', entries(st.sessions.byTransport));

    var totals = [['channels with subscribers', ch.count], ['subscriptions', ch.subscriptions],
      ['counted on', ch.scope === 'node' ? 'this node' : 'every node']];
    if (ch.error) totals.push(['error', ch.error]);
    fill('channel-totals', totals);
    fill('channels', ch.top.map(function (x) { return [x.channel, x.subscribers]; }));

    fill('counters', [['publications', c.publications], ['duplicate publishes (idempotency key)', c.duplicatePublications],
      ['deliveries', sum(c.deliveries)], ['origins refused', c.originsRefused]]);
    var transports = {};
    [c.sessionsOpened, c.deliveries, c.slowClients].forEach(function (m) {
      Object.keys(m || {}).forEach(function (t) { transports[t] = true; });
    });
    fill('transports', Object.keys(transports).sort().map(function (t) {
      return [t, c.sessionsOpened[t] || 0, c.deliveries[t] || 0, c.slowClients[t] || 0];
    }));
    fill('closed', c.sessionsClosed.map(function (x) { return [x.transport, x.code, x.count]; }));
    fill('limited', entries(c.limited));
    fill('api', c.apiRequests.map(function (x) { return [x.route, x.code, x.count]; }));
  }

  function sum(obj) {
    return Object.keys(obj || {}).reduce(function (t, k) { return t + obj[k]; }, 0);
  }

  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  async function poll() {
    var gen = generation;
    var secret = memory;
    if (!secret) { askSecret(''); return; }
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var abort = ctl ? setTimeout(function () { ctl.abort(); }, TIMEOUT) : 0;
    var res;
    try {
      res = await fetch('/admin/state', {
        headers: { Authorization: 'Bearer ' + secret, Accept: 'application/json' },
        cache: 'no-store', credentials: 'omit', redirect: 'error', referrerPolicy: 'no-referrer',
        signal: ctl ? ctl.signal : undefined,
      });
      var body = await res.text();
      clearTimeout(abort);
      if (gen !== generation) return;
      if (res.status === 401) {
        askSecret('The server refused the secret (401): ' + reason(body));
        return;
      }
      if (res.status === 429) {
        var wait = Number(res.headers.get('Retry-After')) || 10;
        showError('Too many failed logins from this address (429): retrying in ' + wait + ' s.');
        later(wait * 1000);
        return;
      }
      if (res.status !== 200) throw new Error('HTTP ' + res.status + ': ' + reason(body));
      var st = JSON.parse(body);
      $('login').hidden = true;
      $('view').hidden = false;
      $('logout').hidden = false;
      render(st);
      $('updated').textContent = 'Last updated ' + new Date(st.time).toLocaleTimeString();
      showError('');
    } catch (e) {
      clearTimeout(abort);
      if (gen !== generation) return;
      showError('Poll failed at ' + new Date().toLocaleTimeString() + ': ' + (e && e.message ? e.message : e) +
        '. The tables show the last answer; retrying.');
    }
    later(EVERY);
  }

  function reason(body) {
    try {
      var e = JSON.parse(body).error;
      if (e && e.reason) return e.reason;
    } catch (x) { /* not the JSON error body */ }
    return body.slice(0, 200);
  }

  function start() {
    $('login').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var s = $('secret').value.trim();
      if (!s) return;
      $('secret').value = '';
      generation++;
      storeSecret(s);
      $('login').hidden = true;
      showError('');
      $('updated').textContent = 'connecting…';
      poll();
    });
    $('logout').addEventListener('click', function () {
      $('view').hidden = true;
      askSecret('');
    });
    if (memory) poll(); else askSecret('');
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
