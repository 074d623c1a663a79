/* The profile page: set or remove the user's own provider keys (write-only: the page only
   ever learns whether one is set) and create or revoke personal API tokens. */
(function () {
  "use strict";

  var M = window.Modelyard;
  var el = M.el;

  /* -- provider keys ---------------------------------------------------------------- */

  function setupKeySlot(slot) {
    var kind = slot.getAttribute("data-key-slot");
    var label = slot.getAttribute("data-label");
    var form = slot.querySelector("[data-key-form]");
    var input = form.querySelector("input[data-key-input]");
    var error = document.getElementById("key-error-" + kind);
    var message = form.querySelector("[data-key-message]");
    var status = slot.querySelector("[data-key-status]");
    var remove = form.querySelector("[data-key-remove]");
    var reveal = form.querySelector("[data-reveal]");
    var save = form.querySelector("[data-key-save]");

    function showStatus(isSet) {
      status.textContent = isSet ? "Key set" : "Not set";
      status.classList.toggle("on", isSet);
      remove.hidden = !isSet;
      save.textContent = isSet ? "Replace key" : "Save key";
    }

    function clearInput() {
      input.value = "";
      input.type = "password";
      reveal.setAttribute("aria-pressed", "false");
      reveal.textContent = "Show";
      reveal.setAttribute("aria-label", "Show " + label + " key");
    }

    function fail(text) {
      input.setAttribute("aria-invalid", "true");
      M.showError(error, text);
      message.textContent = "";
    }

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var key = input.value.trim();
      if (!key) {
        fail("Paste your " + label + " key first.");
        input.focus();
        return;
      }
      save.disabled = true;
      var result = await M.api("PATCH", "/v2/users/me/api-key", { provider: kind, api_key: key });
      save.disabled = false;
      if (!result.ok) {
        fail(result.error);
        input.focus();
        return;
      }
      input.removeAttribute("aria-invalid");
      M.showError(error, "");
      clearInput();
      showStatus(Boolean(result.data["has_" + kind + "_key"]));
      message.textContent = "Saved. The key is stored encrypted and will not be shown again.";
    });

    input.addEventListener("input", function () {
      input.removeAttribute("aria-invalid");
      M.showError(error, "");
    });

    remove.addEventListener("click", async function () {
      if (!window.confirm("Remove your " + label + " key?")) return;
      var result = await M.api("DELETE", "/v2/users/me/api-key?provider=" + encodeURIComponent(kind));
      if (!result.ok && result.status !== 404) {
        fail(result.error);
        return;
      }
      M.showError(error, "");
      clearInput();
      showStatus(false);
      message.textContent = "Removed.";
    });
  }

  /* -- API tokens ------------------------------------------------------------------- */

  var tokenForm = document.getElementById("token-form");
  var tokenName = document.getElementById("token-name");
  var tokenExpires = document.getElementById("token-expires");
  var tokenError = document.getElementById("token-error");
  var tokenRows = document.getElementById("token-rows");
  var tokenEmpty = document.getElementById("token-empty");
  var newToken = document.getElementById("new-token");
  var newTokenValue = document.getElementById("new-token-value");

  function day(value) {
    return value ? String(value).slice(0, 10) : "—";
  }

  function tokenRow(token) {
    var revoked = Boolean(token.revoked_at);
    var action = el("td");
    if (revoked) {
      action.appendChild(el("span", { className: "muted small", text: "Revoked " + day(token.revoked_at) }));
    } else {
      var button = el("button", {
        type: "button",
        className: "button danger-ghost small",
        text: "Revoke",
        "aria-label": "Revoke token " + token.name,
      });
      button.addEventListener("click", function () {
        revokeToken(token);
      });
      action.appendChild(button);
    }
    return el("tr", { className: revoked ? "revoked" : "", "data-token-id": token.id }, [
      el("td", { text: token.name }),
      el("td", {}, [el("code", { text: token.display_prefix + "…" })]),
      el("td", { text: day(token.created_at) }),
      el("td", { text: day(token.last_used_at) }),
      el("td", { text: token.expires_at ? day(token.expires_at) : "never" }),
      action,
    ]);
  }

  async function loadTokens() {
    var result = await M.api("GET", "/v2/tokens");
    if (!result.ok) {
      M.showError(tokenError, result.error);
      return;
    }
    tokenRows.textContent = "";
    result.data.forEach(function (token) {
      tokenRows.appendChild(tokenRow(token));
    });
    tokenEmpty.hidden = result.data.length !== 0;
    document.getElementById("token-table-wrap").hidden = result.data.length === 0;
  }

  async function revokeToken(token) {
    if (!window.confirm('Revoke the token "' + token.name + '"? Programs using it stop working at once.')) return;
    var result = await M.api("DELETE", "/v2/tokens/" + token.id);
    if (!result.ok) {
      M.showError(tokenError, result.error);
      return;
    }
    loadTokens();
  }

  if (tokenForm) {
    tokenForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      var name = tokenName.value.trim();
      if (!name) {
        tokenName.setAttribute("aria-invalid", "true");
        M.showError(tokenError, "Give the token a name, e.g. the machine that will use it.");
        tokenName.focus();
        return;
      }
      var body = { name: name };
      if (tokenExpires.value) body.expires_at = tokenExpires.value + "T00:00:00Z";
      var result = await M.api("POST", "/v2/tokens", body);
      if (!result.ok) {
        M.showError(tokenError, result.error);
        return;
      }
      tokenName.removeAttribute("aria-invalid");
      M.showError(tokenError, "");
      tokenForm.reset();
      newTokenValue.value = result.data.token;
      newToken.hidden = false;
      newTokenValue.focus();
      newTokenValue.select();
      loadTokens();
    });
    tokenName.addEventListener("input", function () {
      tokenName.removeAttribute("aria-invalid");
      M.showError(tokenError, "");
    });
    document.getElementById("copy-token").addEventListener("click", function (event) {
      M.copyText(newTokenValue.value, event.currentTarget);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-key-slot]").forEach(setupKeySlot);
    if (tokenForm) loadTokens();
    document.body.dataset.profileReady = "true"; /* every handler is attached */
  });

  /* -- custom instructions ---------------------------------------------------------- */

  var instructions = document.getElementById("instructions-form");
  if (instructions) {
    var text = document.getElementById("custom-instructions");
    var instructionsError = document.getElementById("instructions-error");
    var instructionsStatus = document.getElementById("instructions-status");
    instructions.addEventListener("submit", async function (event) {
      event.preventDefault();
      instructionsStatus.textContent = "";
      var result = await M.api("PUT", "/v2/users/me/custom-instructions", {
        custom_instructions: text.value,
      });
      if (!result.ok) {
        M.showError(instructionsError, result.error);
        return;
      }
      M.showError(instructionsError, "");
      text.value = result.data.custom_instructions || "";
      instructionsStatus.textContent = result.data.custom_instructions ? "Saved." : "Cleared.";
    });
  }
})();
