// Runs on legacy.html after config.js, before the client bundle: it turns the page into
// an old browser by deleting the APIs the scenario's config names in
// `remove` (WebSocket, EventSource, fetch, Promise, XMLHttpRequest). It is a
// script of the page, not a driver's init script, so that it works alike in
// every engine (classic WebDriver, which drives WebKit, has no init scripts).
// ES5 only.
(function () {
  'use strict';
  var names = window.e2eConfig.remove || []; // config.js ran first
  for (var i = 0; i < names.length; i++) {
    delete window[names[i]];
  }
})();
