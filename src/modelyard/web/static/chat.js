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
  var PAGE_SIZE = 30;

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
    listEmpty: document.getElementById("conversation-empty"),
    listError: document.getElementById("conversation-error"),
    more: document.getElementById("conversation-more"),
    search: document.getElementById("conversation-search"),
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
    listOffset: 0,
    searchTimer: null,
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
      if (!isUser && index === state.messages.length - 1) {
        actions.appendChild(actionButton(message.error ? "Retry" : "Regenerate", regenerate, "regenerate"));
      }
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
      var history = apiMessages(state.messages.slice(0, index)).concat([{ role: "user", content: text }]);
      var replaceFrom = message.saved ? message.id : null;
      state.messages = state.messages.slice(0, index).concat([{ role: "user", content: text, saved: false }]);
      runTurn(history, replaceFrom);
    });
  }

  function apiMessages(list) {
    return list
      .filter(function (message) {
        return !message.error && (message.role === "user" || message.content);
      })
      .map(function (message) {
        return { role: message.role, content: message.content };
      });
  }

  function regenerate() {
    if (state.streaming) return;
    var index = lastIndex("user");
    if (index < 0) return;
    var question = state.messages[index];
    var history = apiMessages(state.messages.slice(0, index + 1));
    state.messages = state.messages.slice(0, index + 1);
    runTurn(history, question.saved ? question.id : null);
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
    for (var attempt = 0; attempt < 30; attempt += 1) {
      var result = await M.api("GET", "/web/api/conversations/" + state.conversationId + "/messages");
      if (!result.ok) return null;
      var items = result.data.items;
      var last = items[items.length - 1];
      if (
        items.length === expected &&
        last.role === "assistant" &&
        last.status === "stopped" &&
        Date.parse(last.created_at) > after
      ) {
        return result.data;
      }
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

  async function runTurn(history, replaceFrom) {
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
    var url = replaceFrom
      ? "/web/api/chat/completions?replace_from=" + encodeURIComponent(replaceFrom)
      : "/v2/llm/chat/completions";

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

    state.controller = null;
    answer.live = false;
    setStreaming(false);

    if (finished && !failure && state.conversationId) {
      await loadMessages();
      loadConversations();
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
        loadConversations();
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

  function stop() {
    if (state.controller) state.controller.abort();
  }

  function submitPrompt(event) {
    if (event) event.preventDefault();
    if (state.streaming) return;
    var text = ui.prompt.value.trim();
    if (!text) {
      M.showError(ui.composerError, "Type a message first.");
      ui.prompt.focus();
      return;
    }
    if (!state.model) {
      M.showError(ui.composerError, "Choose a model first.");
      return;
    }
    /* A failed answer is dropped from the history sent; its question stays. */
    state.messages = state.messages.filter(function (message) {
      return !message.error;
    });
    var history = apiMessages(state.messages).concat([{ role: "user", content: text }]);
    state.messages.push({ role: "user", content: text, saved: false });
    ui.prompt.value = "";
    autosize();
    runTurn(history, null);
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
    syncUrl(true);
    render();
    markActive();
    ui.prompt.focus();
  }

  /* -- the conversations sidebar ---------------------------------------------------- */

  function markActive() {
    ui.list.querySelectorAll(".conversation").forEach(function (item) {
      var active = Number(item.getAttribute("data-id")) === state.conversationId;
      item.classList.toggle("active", active);
      var link = item.querySelector("a");
      if (link) {
        if (active) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      }
    });
  }

  function conversationItem(conversation) {
    var link = el("a", {
      href: modelPath(state.model) + "?c=" + conversation.id,
      text: conversation.title,
      title: conversation.title,
    });
    link.addEventListener("click", function (event) {
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      openConversation(conversation.id, true);
    });
    var menu = el("details", { className: "menu" });
    var summary = el("summary", { "aria-label": "Actions for " + conversation.title, text: "⋯" });
    var rename = el("button", { type: "button", text: "Rename", "data-action": "rename" });
    var remove = el("button", { type: "button", className: "danger-item", text: "Delete", "data-action": "delete" });
    var exportUrl = "/v2/conversations/" + conversation.id + "/export?format=";
    menu.appendChild(summary);
    menu.appendChild(
      el("div", { className: "menu-items" }, [
        rename,
        el("a", { href: exportUrl + "markdown", download: true, text: "Export as Markdown" }),
        el("a", { href: exportUrl + "json", download: true, text: "Export as JSON" }),
        remove,
      ])
    );
    var item = el("li", { className: "conversation", "data-id": conversation.id }, [link, menu]);
    rename.addEventListener("click", function () {
      menu.open = false;
      startRename(item, conversation);
    });
    remove.addEventListener("click", function () {
      menu.open = false;
      deleteConversation(conversation);
    });
    return item;
  }

  function startRename(item, conversation) {
    var id = "rename-" + conversation.id;
    var input = el("input", { id: id, type: "text", maxlength: "200", "aria-describedby": id + "-error" });
    input.value = conversation.title;
    var error = el("p", { className: "field-error", id: id + "-error", role: "alert", hidden: true });
    var save = el("button", { type: "submit", className: "button primary small", text: "Save" });
    var cancel = el("button", { type: "button", className: "button ghost small", text: "Cancel" });
    var form = el("form", { novalidate: true }, [
      el("label", { className: "visually-hidden", for: id, text: "New title" }),
      input,
      save,
      cancel,
      error,
    ]);
    item.textContent = "";
    item.appendChild(form);
    input.focus();
    input.select();
    cancel.addEventListener("click", function () {
      loadConversations();
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Escape") loadConversations();
    });
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var title = input.value.trim();
      if (!title) {
        input.setAttribute("aria-invalid", "true");
        M.showError(error, "Enter a title (1 to 200 characters).");
        return;
      }
      save.disabled = true;
      var result = await M.api("PATCH", "/v2/conversations/" + conversation.id, { title: title });
      save.disabled = false;
      if (!result.ok) {
        input.setAttribute("aria-invalid", "true");
        M.showError(error, result.error);
        return;
      }
      if (conversation.id === state.conversationId) {
        state.title = result.data.title;
        ui.title.textContent = state.title;
      }
      loadConversations();
    });
  }

  async function deleteConversation(conversation) {
    if (!window.confirm('Delete "' + conversation.title + '" and all its messages? This cannot be undone.')) return;
    var result = await M.api("DELETE", "/v2/conversations/" + conversation.id);
    if (!result.ok) {
      M.showError(ui.listError, result.error);
      return;
    }
    if (conversation.id === state.conversationId) newChat();
    loadConversations();
  }

  async function loadConversations(append) {
    var offset = append ? state.listOffset : 0;
    var query = ui.search.value.trim();
    var url = "/v2/conversations/?limit=" + PAGE_SIZE + "&offset=" + offset;
    if (query) url += "&q=" + encodeURIComponent(query);
    var result = await M.api("GET", url);
    if (!result.ok) {
      M.showError(ui.listError, result.error);
      return;
    }
    M.showError(ui.listError, "");
    if (!append) ui.list.textContent = "";
    result.data.items.forEach(function (conversation) {
      ui.list.appendChild(conversationItem(conversation));
    });
    state.listOffset = result.data.next_offset || 0;
    ui.more.hidden = result.data.next_offset === null;
    ui.listEmpty.hidden = result.data.total !== 0;
    ui.listEmpty.textContent = query ? "No conversation matches “" + query + "”." : "No conversations yet.";
    markActive();
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
  ui.search.addEventListener("input", function () {
    window.clearTimeout(state.searchTimer);
    state.searchTimer = window.setTimeout(function () {
      loadConversations();
    }, 200);
  });
  ui.more.addEventListener("click", function () {
    loadConversations(true);
  });
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
