/* Shared by every page: the theme toggle, password show/hide buttons, and a small JSON API
   client that sends the session's CSRF token and turns errors into readable messages. */
(function () {
  "use strict";

  var THEME_KEY = "modelyard-theme";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function errorMessage(body, status) {
    if (body && body.error && typeof body.error.message === "string") {
      return body.error.message;
    }
    if (status === 401) return "Your session has ended; sign in again.";
    if (status === 0) return "The server could not be reached; check the connection and try again.";
    return "The request failed (HTTP " + status + "); try again.";
  }

  /* fetch() a JSON API route; resolves to {ok, status, data, error} and never throws. */
  async function api(method, url, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
    var response;
    try {
      response = await fetch(url, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (error) {
      return { ok: false, status: 0, data: null, error: errorMessage(null, 0) };
    }
    var data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (error) {
        data = null;
      }
    }
    if (!response.ok) {
      return { ok: false, status: response.status, data: data, error: errorMessage(data, response.status) };
    }
    return { ok: true, status: response.status, data: data, error: null };
  }

  /* A cost for people, as the server writes it: $1.23, $0.0123, $0.0000042. */
  function formatUsd(value) {
    var amount = Number(value) || 0;
    if (Math.abs(amount) >= 1) {
      return "$" + amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    }
    var places = Math.abs(amount) >= 0.01 ? 4 : 8;
    var parts = amount.toFixed(places).split(".");
    var fraction = parts[1].replace(/0+$/, "");
    while (fraction.length < 2) fraction += "0";
    return "$" + parts[0] + "." + fraction;
  }

  function formatCount(value) {
    return (Number(value) || 0).toLocaleString("en-US");
  }

  /* document.createElement with properties, attributes and children (text stays text). */
  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      var value = props[key];
      if (value === undefined || value === null || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "hidden") node.hidden = Boolean(value);
      else node.setAttribute(key, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function showError(node, message) {
    if (!node) return;
    node.textContent = message || "";
    node.hidden = !message;
  }

  function currentTheme() {
    var chosen = document.documentElement.getAttribute("data-theme");
    if (chosen === "light" || chosen === "dark") return chosen;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function labelThemeToggles() {
    var next = currentTheme() === "dark" ? "light" : "dark";
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.setAttribute("aria-label", "Switch to " + next + " theme");
      button.setAttribute("title", "Switch to " + next + " theme");
    });
  }

  function setupThemeToggle() {
    labelThemeToggles();
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.addEventListener("click", function () {
        var next = currentTheme() === "dark" ? "light" : "dark";
        document.documentElement.setAttribute("data-theme", next);
        try {
          window.localStorage.setItem(THEME_KEY, next);
        } catch (error) {
          /* not remembered, still applied */
        }
        labelThemeToggles();
      });
    });
  }

  /* <button data-reveal="input-id">: shows or hides a password field's text. */
  function setupRevealButtons(root) {
    (root || document).querySelectorAll("[data-reveal]").forEach(function (button) {
      if (button.dataset.revealReady) return;
      button.dataset.revealReady = "1";
      button.addEventListener("click", function () {
        var input = document.getElementById(button.getAttribute("data-reveal"));
        if (!input) return;
        var show = input.type === "password";
        input.type = show ? "text" : "password";
        button.setAttribute("aria-pressed", show ? "true" : "false");
        button.textContent = show ? "Hide" : "Show";
        var label = button.getAttribute("aria-label") || "";
        button.setAttribute("aria-label", label.replace(/^(Show|Hide)/, show ? "Hide" : "Show"));
      });
    });
  }

  async function copyText(text, button) {
    var original = button ? button.textContent : "";
    try {
      await navigator.clipboard.writeText(text);
      if (button) button.textContent = "Copied";
    } catch (error) {
      if (button) button.textContent = "Copy failed";
    }
    if (button) {
      window.setTimeout(function () {
        button.textContent = original;
      }, 1500);
    }
  }

  window.Modelyard = {
    api: api,
    copyText: copyText,
    csrfToken: csrfToken,
    el: el,
    errorMessage: errorMessage,
    formatCount: formatCount,
    formatUsd: formatUsd,
    setupRevealButtons: setupRevealButtons,
    showError: showError,
  };

  /* Phones: the menu button shows and hides the main navigation; Escape closes it. */
  function setupNavToggle() {
    var button = document.getElementById("nav-toggle");
    var bar = button && button.closest(".topbar");
    if (!bar) return;
    function setOpen(open) {
      bar.classList.toggle("nav-open", open);
      button.setAttribute("aria-expanded", open ? "true" : "false");
    }
    button.addEventListener("click", function () {
      setOpen(!bar.classList.contains("nav-open"));
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && bar.classList.contains("nav-open")) {
        setOpen(false);
        button.focus();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupThemeToggle();
    setupRevealButtons(document);
    setupNavToggle();
  });
})();
