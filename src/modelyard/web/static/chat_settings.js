/* The chat's conversation settings dialog: system prompt, temperature and max tokens.
   A saved conversation's settings live on the server (PATCH /v2/conversations/{id}), which
   applies them to every turn; a new chat's are held here, sent with its first message and
   saved once the conversation exists. */
(function () {
  "use strict";

  var M = window.Modelyard;

  function ChatSettings(options) {
    var ui = {
      dialog: document.getElementById("settings-dialog"),
      form: document.getElementById("settings-form"),
      open: document.getElementById("settings-open"),
      system: document.getElementById("settings-system"),
      temperature: document.getElementById("settings-temperature"),
      maxTokens: document.getElementById("settings-max-tokens"),
      error: document.getElementById("settings-error"),
    };
    var pending = null;

    function show(values) {
      ui.system.value = values.system_prompt || "";
      ui.temperature.value = values.temperature === null || values.temperature === undefined ? "" : values.temperature;
      ui.maxTokens.value = values.max_tokens === null || values.max_tokens === undefined ? "" : values.max_tokens;
      ui.open.classList.toggle("on", Boolean(values.system_prompt || values.temperature != null || values.max_tokens != null));
    }

    /* The form's values, or a message saying what is wrong. */
    function read() {
      var values = { system_prompt: ui.system.value.trim() || null, temperature: null, max_tokens: null };
      if (ui.temperature.value.trim()) {
        var temperature = Number(ui.temperature.value);
        if (!(temperature >= 0 && temperature <= 2)) return "Temperature is a number from 0 to 2 (or empty for the default).";
        values.temperature = temperature;
      }
      if (ui.maxTokens.value.trim()) {
        var maxTokens = Number(ui.maxTokens.value);
        if (!(Number.isInteger(maxTokens) && maxTokens >= 1 && maxTokens <= 1000000)) return "Max tokens is a whole number from 1 to 1,000,000 (or empty for the default).";
        values.max_tokens = maxTokens;
      }
      return values;
    }

    async function open() {
      M.showError(ui.error, "");
      var id = options.current();
      if (id) {
        var result = await M.api("GET", "/v2/conversations/" + id);
        if (result.ok) show(result.data);
      } else {
        show(pending || {});
      }
      ui.dialog.showModal();
      ui.system.focus();
    }

    ui.form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var values = read();
      if (typeof values === "string") {
        M.showError(ui.error, values);
        return;
      }
      var id = options.current();
      if (id) {
        var result = await M.api("PATCH", "/v2/conversations/" + id, values);
        if (!result.ok) {
          M.showError(ui.error, result.error);
          return;
        }
        show(result.data);
      } else {
        pending = values;
        show(values);
      }
      ui.dialog.close();
    });
    ui.dialog.querySelectorAll("[data-close]").forEach(function (button) {
      button.addEventListener("click", function () {
        ui.dialog.close();
      });
    });
    ui.open.addEventListener("click", open);

    return {
      /* A new chat's first request: its settings go with it. */
      applyPending: function (body) {
        if (!pending) return;
        if (pending.system_prompt) body.messages = [{ role: "system", content: pending.system_prompt }].concat(body.messages);
        if (pending.temperature !== null) body.temperature = pending.temperature;
        if (pending.max_tokens !== null) body.max_tokens = pending.max_tokens;
      },
      /* The new chat exists now: its settings become the conversation's. */
      savePending: async function (id) {
        if (!pending || !id) return;
        var values = pending;
        pending = null;
        await M.api("PATCH", "/v2/conversations/" + id, values);
      },
      reset: function () {
        pending = null;
        show({});
      },
    };
  }

  M.ChatSettings = ChatSettings;
})();
