/* Applies the theme stored by the toggle before the page paints (loaded without defer). */
(function () {
  "use strict";
  try {
    var theme = window.localStorage.getItem("modelyard-theme");
    if (theme === "light" || theme === "dark") {
      document.documentElement.setAttribute("data-theme", theme);
    }
  } catch (error) {
    /* storage unavailable: follow the system */
  }
})();
