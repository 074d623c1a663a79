/* The chat page: conversations sidebar, streaming answers, Stop, Regenerate, edit and resend.

   Answers stream from POST /v2/llm/chat/completions (SSE). While they arrive, the text so
   far is rendered by the server (POST /web/api/markdown, one request at a time: the same
   Markdown and sanitising as the final answer), and what arrived after it is shown by a
   minimal renderer that only ever creates text nodes; once complete, the conversation is
   reloaded from /web/api/conversations/{id}/messages, whose HTML the server rendered
   (Markdown without raw HTML, code highlighted). Regenerate and edit go through
   /web/api/chat/completions?replace_from=ID, which replaces the stored turn once the new
   answer is complete. Stop aborts the fetch: the server keeps the question and what had
   arrived of the answer, marked "stopped"; the page waits for that turn to be stored and
   shows it. */
(function () {
  "use strict";

  var M = window.Modelyard;
  var el = M.el;
  var attachments = window.ModelyardAttachments || null;

  var app = document.getElementById("chat-app");
  if (!app) return;

  var ui = {
    messages: document.getElementById("messages"),
    welcome: document.getElementById("welcome"),
    composer: document.getElementById("composer"),
    prompt: document.getElementById("prompt"),
    send: document.getElementById("send"),
    stop: document.getElementById("stop"),
    composerError: document.getElementById("composer-error"),
    model: document.getElementById("model-select"),
    title: document.getElementById("conversation-title"),
    list: document.getElementById("conversation-list"),
    sidebar: document.getElementById("chat-sidebar"),
    sidebarToggle: document.getElementById("sidebar-toggle"),
    newChat: document.querySelector("[data-new-chat]"),
  };

  var state = {
    model: app.getAttribute("data-model"),
    conversationId: Number(app.getAttribute("data-conversation")) || null,
    title: "",
    /* {id, role, content, html, meta, saved, stopped, error, live} */
    messages: [],
    controller: null,
    streaming: false,
  };

  /* -- URLs ------------------------------------------------------------------------- */

  function modelPath(model) {
    if (!model) return "/chat";
    return "/language-models/" + model.split("/").map(encodeURIComponent).join("/");
  }

  function pageUrl() {
    return modelPath(state.model) + (state.conversationId ? "?c=" + state.conversationId : "");
  }

  function syncUrl(push) {
    var url = pageUrl();
    if (url === window.location.pathname + window.location.search) return;
    if (push) window.history.pushState({ c: state.conversationId }, "", url);
    else window.history.replaceState({ c: state.conversationId }, "", url);
  }

  /* -- the live renderer: text nodes only ------------------------------------------ */

  function appendText(parent, text) {
    text.split("\n").forEach(function (piece, index) {
      if (index) parent.appendChild(document.createElement("br"));
      if (piece) parent.appendChild(document.createTextNode(piece));
    });
  }

  function appendInline(parent, text) {
    var pattern = /(`[^`\n]+`|\*\*[^*\n]+\*\*)/g;
    var last = 0;
    var match;
    while ((match = pattern.exec(text)) !== null) {
      appendText(parent, text.slice(last, match.index));
      var token = match[0];
      if (token.charAt(0) === "`") parent.appendChild(el("code", { text: token.slice(1, -1) }));
      else parent.appendChild(el("strong", { text: token.slice(2, -2) }));
      last = match.index + token.length;
    }
    appendText(parent, text.slice(last));
  }

  function liveMarkdown(text) {
    var fragment = document.createDocumentFragment();
    var paragraph = [];
    var code = null;
    var language = "";

    function flush() {
      if (!paragraph.length) return;
      var p = document.createElement("p");
      appendInline(p, paragraph.join("\n"));
      fragment.appendChild(p);
      paragraph = [];
    }

    function codeBlock(lines) {
      if (!lines.join("").trim()) return; /* no empty code block before the code arrives */
      var pre = el("pre", { "data-lang": language || null }, [el("code", { text: lines.join("\n") })]);
      fragment.appendChild(pre);
    }

    text.split("\n").forEach(function (line) {
      var fence = /^\s*```(.*)$/.exec(line);
      if (fence) {
        if (code === null) {
          flush();
          code = [];
          language = fence[1].trim();
        } else {
          codeBlock(code);
          code = null;
        }
        return;
      }
      if (code !== null) code.push(line);
      else if (!line.trim()) flush();
      else paragraph.push(line);
    });
    if (code !== null) codeBlock(code);
    flush();
    return fragment;
  }

  /* Server-rendered HTML gets a header with the language and a Copy button per code block. */
  function enhanceCode(container) {
    container.querySelectorAll("pre.hl").forEach(function (pre) {
      if (pre.parentNode.classList.contains("code-block")) return;
      var copy = el("button", { type: "button", className: "button ghost small", text: "Copy" });
      copy.addEventListener("click", function () {
        M.copyText(pre.textContent, copy);
      });
      var head = el("div", { className: "code-head" }, [
        el("span", { text: pre.getAttribute("data-lang") || "code" }),
        copy,
      ]);
      var block = el("div", { className: "code-block" });
      pre.parentNode.insertBefore(block, pre);
      block.appendChild(head);
      block.appendChild(pre);
    });
  }

  /* -- messages --------------------------------------------------------------------- */

  function metaLine(message) {
    var parts = [];
    if (message.role === "user") {
      if (message.saved && message.input_tokens) parts.push(M.formatCount(message.input_tokens) + " input tokens");
    } else if (message.saved) {
      parts.push(M.formatCount(message.output_tokens) + " output tokens");
      parts.push(message.cost);
      if (message.latency_ms !== null && message.latency_ms !== undefined) {
        parts.push((message.latency_ms / 1000).toFixed(1) + " s");
      }
      if (message.model) parts.push(message.model);
    }
    if (!parts.length) return null;
    var line = el("div", { className: "meta" });
    parts.forEach(function (part, index) {
      if (index) line.appendChild(el("span", { className: "sep", "aria-hidden": "true", text: "·" }));
      line.appendChild(el("span", { text: part }));
    });
    return line;
  }

  function lastIndex(role) {
    for (var i = state.messages.length - 1; i >= 0; i -= 1) {
      if (state.messages[i].role === role && !state.messages[i].error) return i;
    }
    return -1;
  }

  function actionButton(label, handler, name) {
    var button = el("button", { type: "button", text: label, "data-action": name });
    button.addEventListener("click", handler);
    return button;
  }

  /* "< 2/3 >" under a message with several versions: another version shows the branch
     through it (PUT /web/api/conversations/{id}/shown). */
  function versionSwitcher(message) {
    if (!message.saved || !message.version_count || message.version_count < 2) return null;
    var position = message.version - 1;
    function go(step) {
      return function () {
        var target = message.version_ids[position + step];
        if (target === undefined || state.streaming) return;
        M.api("PUT", "/web/api/conversations/" + state.conversationId + "/shown", { message_id: target }).then(
          function (result) {
            if (result.ok) showStored(result.data);
            else M.showError(ui.composerError, result.error);
          }
        );
      };
    }
    var previous = actionButton("‹", go(-1), "previous-version");
    previous.setAttribute("aria-label", "Previous version");
    previous.disabled = position === 0;
    var next = actionButton("›", go(1), "next-version");
    next.setAttribute("aria-label", "Next version");
    next.disabled = position === message.version_count - 1;
    return el("span", { className: "versions", role: "group", "aria-label": "Versions" }, [
      previous,
      el("span", { className: "version-count", text: message.version + "/" + message.version_count }),
      next,
    ]);
  }

  function messageNode(message, index) {
    var isUser = message.role === "user";
    var content = el("div", { className: "content" + (isUser ? "" : " markdown") });
    if (isUser) content.textContent = message.content;
    else if (message.html) {
      content.innerHTML = message.html; /* rendered and escaped by the server */
      enhanceCode(content);
    } else if (message.content) content.appendChild(liveMarkdown(message.content));
    if (message.live) content.classList.add("typing");

    var bubble = el("div", { className: "bubble" }, [
      el("h3", { className: "visually-hidden", text: isUser ? "You wrote" : "Answer" }),
      content,
    ]);
    var files = attachments ? attachments.messageChips(message.attachments) : null;
    if (files) bubble.appendChild(files);
    if (message.error) {
      bubble.appendChild(el("p", { className: "alert error message-error", role: "alert", text: message.error }));
    }
    if (message.stopped || message.status === "stopped") {
      bubble.appendChild(el("p", { className: "stopped-note", text: "Stopped — the answer ends here." }));
    }
    var meta = metaLine(message);
    if (meta) bubble.appendChild(meta);

    if (!message.live && !state.streaming) {
      var actions = el("div", { className: "actions" });
      if (!message.error) {
        actions.appendChild(
          actionButton("Copy", function (event) {
            M.copyText(message.content, event.currentTarget);
          }, "copy")
        );
      }
      if (isUser) actions.appendChild(actionButton("Edit", function () { startEdit(index); }, "edit"));
      var last = index === state.messages.length - 1;
      if (!isUser && last && message.saved && message.status === "stopped") {
        actions.appendChild(actionButton("Continue", function () { continueAnswer(index); }, "continue"));
      }
      if (!isUser && last) {
        actions.appendChild(actionButton(message.error ? "Retry" : "Regenerate", regenerate, "regenerate"));
      }
      var versions = versionSwitcher(message);
      if (versions) actions.insertBefore(versions, actions.firstChild);
      bubble.appendChild(actions);
    }

    return el(
      "article",
      {
        className: "message " + (isUser ? "user" : "assistant"),
        "data-message-id": message.id || null,
        "data-role": message.role,
      },
      [el("div", { className: "avatar", "aria-hidden": "true", text: isUser ? "You" : "◆" }), bubble]
    );
  }

  function render() {
    ui.messages.querySelectorAll(".message").forEach(function (node) {
      node.remove();
    });
    ui.welcome.hidden = state.messages.length > 0;
    state.messages.forEach(function (message, index) {
      ui.messages.appendChild(messageNode(message, index));
    });
    ui.title.textContent = state.title || "New chat";
    document.title = (state.title || "Chat") + " · modelyard";
    scrollToEnd();
  }

  function scrollToEnd() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  /* The live answer: the server's HTML of the text rendered so far (message.liveHtml, of
     message.liveLength characters), then the rest as text. */
  function liveContent(node, message) {
    var rendered = message.liveHtml ? message.liveLength : 0;
    node.textContent = "";
    if (rendered) node.innerHTML = message.liveHtml; /* rendered and escaped by the server */
    var rest = message.content.slice(rendered);
    if (rest.trim()) node.appendChild(liveMarkdown(rest));
  }

  var pendingLive = false;
  function renderLive(message) {
    if (pendingLive) return;
    pendingLive = true;
    window.requestAnimationFrame(function () {
      pendingLive = false;
      var node = ui.messages.querySelector(".message:last-of-type .content");
      if (!node || !message.live) return;
      var nearBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 80;
      liveContent(node, message);
      if (nearBottom) scrollToEnd();
    });
    renderOnServer(message);
  }

  /* Ask the server to render the live answer so far; one request at a time, the next one
     as soon as more text has arrived. */
  var MAX_MARKDOWN = 200000;
  function renderOnServer(message) {
    if (message.rendering || !message.live) return;
    var text = message.content;
    if (text.length === message.liveLength || text.length > MAX_MARKDOWN) return;
    message.rendering = true;
    M.api("POST", "/web/api/markdown", { text: text }).then(function (result) {
      message.rendering = false;
      if (!message.live) return;
      if (result.ok) {
        message.liveHtml = result.data.html;
        message.liveLength = text.length;
        renderLive(message);
      }
    });
  }

  function startEdit(index) {
    var message = state.messages[index];
    var node = ui.messages.querySelectorAll(".message")[index];
    if (!node || state.streaming) return;
    var bubble = node.querySelector(".bubble");
    var id = "edit-" + index;
    var area = el("textarea", { id: id, rows: "3" });
    area.value = message.content;
    var error = el("p", { className: "field-error", role: "alert", hidden: true });
    var save = el("button", { type: "submit", className: "button primary small", text: "Save & send" });
    var cancel = el("button", { type: "button", className: "button ghost small", text: "Cancel" });
    var form = el("form", { className: "edit-box", novalidate: true }, [
      el("label", { className: "visually-hidden", for: id, text: "Edit your message" }),
      area,
      error,
      el("div", { className: "row" }, [save, cancel]),
    ]);
    bubble.textContent = "";
    bubble.appendChild(form);
    area.focus();
    cancel.addEventListener("click", render);
    area.addEventListener("keydown", function (event) {
      if (event.key === "Escape") render();
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = area.value.trim();
      if (!text) {
        M.showError(error, "The message is empty; type something or press Cancel.");
        area.setAttribute("aria-invalid", "true");
        return;
      }
      var edited = { role: "user", content: text, saved: false, attachments: message.attachments || [] };
      var history = apiMessages(state.messages.slice(0, index).concat([edited]));
      var replaceFrom = message.saved ? message.id : null;
      state.messages = state.messages.slice(0, index).concat([edited]);
      runTurn(history, { replaceFrom: replaceFrom });
    });
  }

  function apiMessages(list) {
    return list
      .filter(function (message) {
        return !message.error && (message.role === "user" || message.content);
      })
      .map(function (message) {
        var sent = { role: message.role, content: message.content };
        if (message.attachments && message.attachments.length) {
          sent.attachment_ids = message.attachments.map(function (file) {
            return file.id;
          });
        }
        return sent;
      });
  }

  function regenerate() {
    if (state.streaming) return;
    var index = lastIndex("user");
    if (index < 0) return;
    var question = state.messages[index];
    var history = apiMessages(state.messages.slice(0, index + 1));
    state.messages = state.messages.slice(0, index + 1);
    runTurn(history, { replaceFrom: question.saved ? question.id : null });
  }

  /* Continue a stopped answer: the model goes on from where it stopped and the server
     appends what it writes to the stored answer. */
  function continueAnswer(index) {
    if (state.streaming) return;
    runTurn(apiMessages(state.messages.slice(0, index + 1)), { continueFrom: state.messages[index] });
  }

  /* -- streaming -------------------------------------------------------------------- */

  function setStreaming(on) {
    state.streaming = on;
    ui.send.hidden = on;
    ui.stop.hidden = !on;
    ui.messages.setAttribute("aria-busy", on ? "true" : "false");
    if (on) ui.stop.focus();
  }

  function parseEvents(buffer, onData) {
    var normalized = buffer.replace(/\r\n/g, "\n");
    var boundary;
    while ((boundary = normalized.indexOf("\n\n")) !== -1) {
      var event = normalized.slice(0, boundary);
      normalized = normalized.slice(boundary + 2);
      event.split("\n").forEach(function (line) {
        if (line.indexOf("data:") === 0) onData(line.slice(5).trim());
      });
    }
    return normalized;
  }

  /* After Stop: the stored history once it holds the stopped turn (the server stores it
     when it notices the closed connection), or null after a few seconds. */
  async function storedStop(expected, after) {
    return storedWhen(function (items) {
      var last = items[items.length - 1];
      return (
        items.length === expected &&
        last.role === "assistant" &&
        last.status === "stopped" &&
        Date.parse(last.created_at) > after
      );
    });
  }

  /* The stored history once ``ready(items)`` holds for it, or null after a few seconds. */
  async function storedWhen(ready) {
    for (var attempt = 0; attempt < 30; attempt += 1) {
      var result = await M.api("GET", "/web/api/conversations/" + state.conversationId + "/messages");
      if (!result.ok) return null;
      if (ready(result.data.items)) return result.data;
      await new Promise(function (resolve) {
        window.setTimeout(resolve, 100);
      });
    }
    return null;
  }

  /* After Stop on a first turn before the answer began, the page never got the new
     conversation's id (it comes with the answer's headers), yet the server kept the
     question in a new conversation: the user's newest one, newer than any the sidebar
     knew when the question was sent, holding this question and its answer. Its id and
     history, or null after a few seconds (the server kept nothing). */
  async function storedFirstStop(question, knownMax) {
    for (var attempt = 0; attempt < 60; attempt += 1) {
      var list = await M.api("GET", "/v2/conversations/?limit=1");
      if (!list.ok) return null;
      var newest = list.data.items[0];
      if (newest && newest.id > knownMax) {
        var result = await M.api("GET", "/web/api/conversations/" + newest.id + "/messages");
        var items = result.ok ? result.data.items : [];
        /* (Complete, if the whole answer had arrived before the server noticed.) */
        if (items.length === 2 && items[0].role === "user" && items[0].content === question) {
          return { id: newest.id, data: result.data };
        }
      }
      await new Promise(function (resolve) {
        window.setTimeout(resolve, 150);
      });
    }
    return null;
  }

  function knownConversationMax() {
    var max = 0;
    ui.list.querySelectorAll(".conversation").forEach(function (item) {
      max = Math.max(max, Number(item.getAttribute("data-id")) || 0);
    });
    return max;
  }

  function showStored(data) {
    state.title = data.title;
    state.messages = data.items.map(function (item) {
      item.saved = true;
      return item;
    });
    render();
    markActive();
  }

  /* POST the turn and stream its answer into ``answer.content``: whether it finished,
     was stopped (aborted), or failed (the failure's message). */
  async function streamAnswer(url, body, answer, controller) {
    var finished = false;
    var failure = null;
    var stopped = false;
    try {
      var response = await fetch(url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "text/event-stream",
          "X-CSRF-Token": M.csrfToken(),
        },
        body: JSON.stringify(body),
        credentials: "same-origin",
        signal: controller.signal,
      });
      if (!response.ok) {
        var data = null;
        try {
          data = await response.json();
        } catch (error) {
          data = null;
        }
        failure = M.errorMessage(data, response.status);
      } else {
        var header = response.headers.get("x-modelyard-conversation-id");
        if (header) {
          state.conversationId = Number(header);
          syncUrl(false);
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        for (;;) {
          var chunk = await reader.read();
          if (chunk.done) break;
          buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), function (data) {
            if (data === "[DONE]") {
              finished = true;
              return;
            }
            var event;
            try {
              event = JSON.parse(data);
            } catch (error) {
              return;
            }
            if (event.error) {
              failure = event.error.message || "The answer stopped with an error.";
              return;
            }
            (event.choices || []).forEach(function (choice) {
              var text = choice.delta && choice.delta.content;
              if (text) answer.content += text;
            });
            renderLive(answer);
          });
        }
        if (!finished && !failure) failure = "The answer was cut off before it was complete; try again.";
      }
    } catch (error) {
      if (controller.signal.aborted) stopped = true;
      else failure = "The connection was lost while the answer arrived; try again.";
    }

    return { finished: finished, failure: failure, stopped: stopped };
  }

  async function runTurn(history, options) {
    var replaceFrom = options.replaceFrom || null;
    if (options.continueFrom) return continueTurn(history, options.continueFrom);
    M.showError(ui.composerError, "");
    /* What the stored history holds once this turn is: the kept messages and two more. */
    var kept = state.messages.filter(function (message) {
      return message.saved && (!replaceFrom || message.id < replaceFrom);
    }).length;
    var newest = state.messages.reduce(function (latest, message) {
      return message.saved ? Math.max(latest, Date.parse(message.created_at)) : latest;
    }, 0);
    var answer = { role: "assistant", content: "", saved: false, live: true };
    state.messages.push(answer);
    var createdHere = state.conversationId === null;
    var knownMax = createdHere ? knownConversationMax() : 0;
    var question = history.length ? history[history.length - 1].content : "";
    setStreaming(true);
    render();

    var controller = new AbortController();
    state.controller = controller;
    var body = { model: state.model, messages: history, stream: true, stream_options: { include_usage: true } };
    if (state.conversationId) body.conversation_id = state.conversationId;
    else chatSettings.applyPending(body);
    var url = replaceFrom
      ? "/web/api/chat/completions?replace_from=" + encodeURIComponent(replaceFrom)
      : "/v2/llm/chat/completions";

    var outcome = await streamAnswer(url, body, answer, controller);
    var finished = outcome.finished;
    var failure = outcome.failure;
    var stopped = outcome.stopped;

    state.controller = null;
    answer.live = false;
    setStreaming(false);

    if (finished && !failure && state.conversationId) {
      if (createdHere) await chatSettings.savePending(state.conversationId);
      await loadMessages();
      refreshSidebar(createdHere);
      ui.prompt.focus();
      return;
    }
    if (stopped && state.conversationId) {
      /* The server keeps the question and the answer so far, marked stopped. */
      var stored = await storedStop(kept + 2, newest);
      if (stored) showStored(stored);
      else await loadMessages();
      loadConversations();
      ui.prompt.focus();
      return;
    }
    if (stopped && createdHere) {
      answer.stopped = true;
      render(); /* while the server notices the closed connection and keeps the turn */
      var first = await storedFirstStop(question, knownMax);
      if (first) {
        state.conversationId = first.id;
        syncUrl(false);
        showStored(first.data);
        refreshSidebar(true);
        ui.prompt.focus();
        return;
      }
    }
    /* Nothing was stored: a conversation this turn started is gone again. */
    if (createdHere) {
      state.conversationId = null;
      syncUrl(false);
    }
    if (stopped) {
      answer.stopped = true;
      if (answer.content) {
        var rendered = await M.api("POST", "/web/api/markdown", { text: answer.content });
        if (rendered.ok) answer.html = rendered.data.html;
      }
      loadConversations();
    } else {
      answer.error = failure;
      if (!answer.content) answer.content = "";
    }
    render();
    ui.prompt.focus();
  }

  async function continueTurn(history, answer) {
    M.showError(ui.composerError, "");
    var before = answer.content;
    answer.live = true;
    answer.html = null;
    answer.liveHtml = null;
    answer.liveLength = 0;
    answer.status = null;
    setStreaming(true);
    render();
    var controller = new AbortController();
    state.controller = controller;
    var body = {
      model: state.model,
      messages: history,
      stream: true,
      stream_options: { include_usage: true },
      conversation_id: state.conversationId,
    };
    var url = "/web/api/chat/completions?continue_from=" + encodeURIComponent(answer.id);
    var outcome = await streamAnswer(url, body, answer, controller);
    state.controller = null;
    answer.live = false;
    setStreaming(false);
    if (outcome.stopped && answer.content.length > before.length) {
      /* The server appends what had arrived once it notices the closed connection. */
      var stored = await storedWhen(function (items) {
        var last = items[items.length - 1];
        return last && last.id === answer.id && last.content.length > before.length;
      });
      if (stored) {
        showStored(stored);
        ui.prompt.focus();
        return;
      }
    }
    await loadMessages();
    if (outcome.failure) M.showError(ui.composerError, outcome.failure);
    ui.prompt.focus();
  }

  function stop() {
    if (state.controller) state.controller.abort();
  }

  function submitPrompt(event) {
    if (event) event.preventDefault();
    if (state.streaming) return;
    var text = ui.prompt.value.trim();
    if (attachments && attachments.busy()) {
      M.showError(ui.composerError, "Wait until the files are uploaded, then send.");
      return;
    }
    var refusal = attachments ? attachments.refusal() : null;
    if (refusal) {
      M.showError(ui.composerError, refusal);
      return;
    }
    if (!text && !(attachments && attachments.count())) {
      M.showError(ui.composerError, "Type a message first.");
      ui.prompt.focus();
      return;
    }
    if (!state.model) {
      M.showError(ui.composerError, "Choose a model first.");
      return;
    }
    var files = attachments ? attachments.take() : [];
    /* A failed answer is dropped from the history sent; its question stays. */
    state.messages = state.messages.filter(function (message) {
      return !message.error;
    });
    var question = { role: "user", content: text, saved: false, attachments: files };
    var history = apiMessages(state.messages.concat([question]));
    state.messages.push(question);
    ui.prompt.value = "";
    autosize();
    runTurn(history, {});
  }

  /* -- loading a conversation ------------------------------------------------------- */

  async function loadMessages() {
    if (!state.conversationId) {
      state.messages = [];
      state.title = "";
      render();
      return;
    }
    var result = await M.api("GET", "/web/api/conversations/" + state.conversationId + "/messages");
    if (!result.ok) {
      state.messages = [];
      state.title = "";
      render();
      M.showError(ui.composerError, result.error);
      if (result.status === 404) {
        state.conversationId = null;
        syncUrl(false);
      }
      return;
    }
    state.title = result.data.title;
    state.messages = result.data.items.map(function (item) {
      item.saved = true;
      return item;
    });
    render();
    markActive();
  }

  function openConversation(id, push) {
    if (state.streaming) return;
    state.conversationId = id;
    syncUrl(push);
    M.showError(ui.composerError, "");
    loadMessages();
    markActive();
    ui.sidebar.classList.remove("open");
    ui.sidebarToggle.setAttribute("aria-expanded", "false");
  }

  function newChat(event) {
    if (event && (event.metaKey || event.ctrlKey || event.shiftKey)) return;
    if (event) event.preventDefault();
    if (state.streaming) return;
    state.conversationId = null;
    state.messages = [];
    state.title = "";
    chatSettings.reset();
    syncUrl(true);
    render();
    markActive();
    ui.prompt.focus();
  }

  /* -- the conversations sidebar (static/sidebar.js) -------------------------------- */

  var chatSettings = M.ChatSettings({
    current: function () {
      return state.conversationId;
    },
  });

  var sidebar = M.Sidebar({
    href: function (id) {
      return modelPath(state.model) + "?c=" + id;
    },
    current: function () {
      return state.conversationId;
    },
    open: function (id) {
      openConversation(id, true);
    },
    /* Deleted or archived: the chat it showed gives way to a new one. */
    removed: function (id) {
      if (id === state.conversationId) newChat();
    },
    renamed: function (id, title) {
      if (id !== state.conversationId) return;
      state.title = title;
      ui.title.textContent = title;
      document.title = title + " · modelyard";
    },
  });

  function markActive() {
    sidebar.markActive();
  }

  function loadConversations(append) {
    return sidebar.load(append);
  }

  /* After a turn; after a conversation's first answer, ask for a generated title
     (the sidebar reloads once it is known). */
  function refreshSidebar(firstTurn) {
    if (firstTurn && state.conversationId) sidebar.title(state.conversationId);
    else loadConversations();
  }

  /* -- composer and toolbar --------------------------------------------------------- */

  function autosize() {
    ui.prompt.style.height = "auto";
    ui.prompt.style.height = Math.min(ui.prompt.scrollHeight, 224) + "px";
  }

  ui.composer.addEventListener("submit", submitPrompt);
  ui.stop.addEventListener("click", stop);
  ui.prompt.addEventListener("input", function () {
    autosize();
    if (ui.prompt.value.trim()) M.showError(ui.composerError, "");
  });
  ui.prompt.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submitPrompt(event);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && state.streaming) stop();
  });
  ui.model.addEventListener("change", function () {
    state.model = ui.model.value;
    ui.newChat.setAttribute("href", modelPath(state.model));
    syncUrl(false);
    loadConversations();
  });
  ui.newChat.addEventListener("click", newChat);
  ui.sidebarToggle.addEventListener("click", function () {
    var open = ui.sidebar.classList.toggle("open");
    ui.sidebarToggle.setAttribute("aria-expanded", open ? "true" : "false");
  });
  window.addEventListener("popstate", function () {
    var match = /[?&]c=(\d+)/.exec(window.location.search);
    openConversation(match ? Number(match[1]) : null, false);
  });

  loadConversations();
  loadMessages().then(function () {
    ui.prompt.focus();
    app.dataset.ready = "true"; /* every handler is attached and the history shown */
  });
})();
