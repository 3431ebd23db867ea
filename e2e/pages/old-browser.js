// Runs first on legacy.html, before the client bundle: it turns the page into
// an old browser by deleting the APIs the scenario's config names in
// `remove` (WebSocket, EventSource, fetch, Promise, XMLHttpRequest). It is a
// script of the page, not a driver's init script, so that it works alike in
// every engine (classic WebDriver, which drives WebKit, has no init scripts).
// ES5 only.
(function () {
  'use strict';
  var config = {};
  try {
    config = JSON.parse(decodeURIComponent(location.hash.slice(1)) || '{}');
  } catch (e) {
    return; // collector.js reports the broken config
  }
  var names = config.remove || [];
  for (var i = 0; i < names.length; i++) {
    delete window[names[i]];
  }
})();
