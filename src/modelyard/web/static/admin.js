/* The admin (SQLAdmin on Tabler) in the app's theme: Tabler's data-bs-theme follows the
   app's choice (html[data-theme], set by theme.js and the toggle) or else the system's
   prefers-color-scheme, now and whenever either changes. Loaded in <head>, after theme.js. */
(function () {
  "use strict";
  var root = document.documentElement;
  var query = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function apply() {
    var chosen = root.getAttribute("data-theme");
    var dark = chosen === "dark" || (chosen !== "light" && query !== null && query.matches);
    root.setAttribute("data-bs-theme", dark ? "dark" : "light");
  }

  apply();
  if (window.MutationObserver) {
    new MutationObserver(apply).observe(root, { attributes: true, attributeFilter: ["data-theme"] });
  }
  if (query) {
    if (query.addEventListener) query.addEventListener("change", apply);
    else if (query.addListener) query.addListener(apply);
  }
})();
