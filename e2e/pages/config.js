// Runs first on every test page: the scenario's settings, which travel as
// JSON in the URL fragment, as window.e2eConfig (with `error` set when the
// fragment is not JSON). ES5 only.
(function () {
  'use strict';
  try {
    window.e2eConfig = JSON.parse(decodeURIComponent(location.hash.slice(1)) || '{}');
  } catch (e) {
    window.e2eConfig = { error: String(e) };
  }
})();
