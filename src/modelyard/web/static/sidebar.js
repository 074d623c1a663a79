/* The chat page's conversations sidebar: the list grouped by date in the browser's local
   time (Pinned on top, then Today, Yesterday, Previous 7 days, Previous 30 days, and older
   ones by month), search, each conversation's menu (Pin, Rename, Share, Archive, Export,
   Delete), the Archived list and the Share dialog.

   chat.js creates it with Modelyard.Sidebar({href, current, open, removed, renamed}) and
   gets {load, markActive, title}: load(append) lists the conversations again (append: the
   next page), title(id) asks the server for a generated title after a first exchange. */
(function () {
  "use strict";

  var M = window.Modelyard;
  var el = M.el;
  var PAGE_SIZE = 30;
  var ARCHIVED_PAGE = 100;
  var DAY_MS = 86400000;

  function startOfDay(date) {
    return new Date(date.getFullYear(), date.getMonth(), date.getDate());
  }

  /* The group of a conversation last active at `when`, seen at `now` (local time). */
  function groupLabel(when, now) {
    var days = Math.round((startOfDay(now) - startOfDay(when)) / DAY_MS); /* DST-safe */
    if (days <= 0) return "Today";
    if (days === 1) return "Yesterday";
    if (days <= 7) return "Previous 7 days";
    if (days <= 30) return "Previous 30 days";
    var options = { month: "long" };
    if (when.getFullYear() !== now.getFullYear()) options.year = "numeric";
    return when.toLocaleDateString("en-US", options);
  }

  /* [{label, items}] in the server's order (pinned first, then most recently active). */
  function groupConversations(conversations, now) {
    var groups = [];
    var byLabel = {};
    conversations.forEach(function (conversation) {
      var label = conversation.pinned ? "Pinned" : groupLabel(new Date(conversation.updated_at), now);
      if (!byLabel[label]) {
        byLabel[label] = { label: label, items: [] };
        groups.push(byLabel[label]);
      }
      byLabel[label].items.push(conversation);
    });
    return groups;
  }

  function menuButton(text, action, className) {
    return el("button", { type: "button", text: text, "data-action": action, className: className || null });
  }

  function Sidebar(options) {
    var ui = {
      list: document.getElementById("conversation-list"),
      empty: document.getElementById("conversation-empty"),
      error: document.getElementById("conversation-error"),
      more: document.getElementById("conversation-more"),
      search: document.getElementById("conversation-search"),
      archivedOpen: document.getElementById("archived-open"),
      archived: document.getElementById("archived-dialog"),
      archivedList: document.getElementById("archived-list"),
      archivedEmpty: document.getElementById("archived-empty"),
      archivedError: document.getElementById("archived-error"),
      share: document.getElementById("share-dialog"),
    };
    var state = { conversations: [], offset: 0, searchTimer: null, sharing: null };

    /* -- the list ------------------------------------------------------------------ */

    function markActive() {
      ui.list.querySelectorAll(".conversation").forEach(function (item) {
        var active = Number(item.getAttribute("data-id")) === options.current();
        item.classList.toggle("active", active);
        var link = item.querySelector("a");
        if (!link) return;
        if (active) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      });
    }

    function openLink(conversation) {
      var link = el("a", { href: options.href(conversation.id), text: conversation.title, title: conversation.title });
      /* The conversation's model, shown under its title (by the style sheet). */
      if (conversation.model) {
        link.setAttribute("data-model", conversation.model);
        link.title = conversation.title + " — " + conversation.model;
      }
      link.addEventListener("click", function (event) {
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        if (ui.archived.open) ui.archived.close();
        options.open(conversation.id);
      });
      return link;
    }

    function conversationItem(conversation) {
      var menu = el("details", { className: "menu" });
      var exportUrl = "/v2/conversations/" + conversation.id + "/export?format=";
      var pin = menuButton(conversation.pinned ? "Unpin" : "Pin", "pin");
      var rename = menuButton("Rename", "rename");
      var share = menuButton(conversation.share_id ? "Shared link…" : "Share…", "share");
      var archive = menuButton("Archive", "archive");
      var remove = menuButton("Delete", "delete", "danger-item");
      menu.appendChild(el("summary", { "aria-label": "Actions for " + conversation.title, text: "⋯" }));
      menu.appendChild(
        el("div", { className: "menu-items" }, [
          pin,
          rename,
          share,
          archive,
          el("a", { href: exportUrl + "markdown", download: true, text: "Export as Markdown" }),
          el("a", { href: exportUrl + "json", download: true, text: "Export as JSON" }),
          remove,
        ])
      );
      var item = el("li", { className: "conversation", "data-id": conversation.id }, [openLink(conversation), menu]);
      if (conversation.share_id) {
        item.appendChild(el("span", { className: "shared-mark", title: "Shared by link", text: "Shared" }));
      }
      function act(button, handler) {
        button.addEventListener("click", function () {
          menu.open = false;
          handler();
        });
      }
      act(pin, function () {
        update(conversation, { pinned: !conversation.pinned });
      });
      act(rename, function () {
        startRename(item, conversation);
      });
      act(share, function () {
        openShare(conversation);
      });
      act(archive, function () {
        update(conversation, { archived: true }).then(function (ok) {
          if (ok) options.removed(conversation.id);
        });
      });
      act(remove, function () {
        deleteConversation(conversation);
      });
      return item;
    }

    function render() {
      ui.list.textContent = "";
      groupConversations(state.conversations, new Date()).forEach(function (group, index) {
        var id = "conversation-group-" + index;
        var items = el("ul", { className: "conversation-items", "aria-labelledby": id });
        group.items.forEach(function (conversation) {
          items.appendChild(conversationItem(conversation));
        });
        ui.list.appendChild(
          el("section", { className: "conversation-group", "data-group": group.label }, [
            el("h2", { className: "group-label", id: id, text: group.label }),
            items,
          ])
        );
      });
      markActive();
    }

    async function load(append) {
      var offset = append ? state.offset : 0;
      var query = ui.search.value.trim();
      var url = "/v2/conversations/?limit=" + PAGE_SIZE + "&offset=" + offset;
      if (query) url += "&q=" + encodeURIComponent(query);
      var result = await M.api("GET", url);
      if (!result.ok) {
        M.showError(ui.error, result.error);
        return;
      }
      M.showError(ui.error, "");
      state.conversations = (append ? state.conversations : []).concat(result.data.items);
      state.offset = result.data.next_offset || 0;
      ui.more.hidden = result.data.next_offset === null;
      ui.empty.hidden = result.data.total !== 0;
      ui.empty.textContent = query ? "No conversation matches “" + query + "”." : "No conversations yet.";
      render();
    }

    /* PATCH the conversation; the list is loaded again. Resolves to whether it worked. */
    async function update(conversation, changes) {
      var result = await M.api("PATCH", "/v2/conversations/" + conversation.id, changes);
      if (!result.ok) {
        M.showError(ui.error, result.error);
        return false;
      }
      await load();
      return true;
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
        load();
      });
      input.addEventListener("keydown", function (event) {
        if (event.key === "Escape") load();
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
        options.renamed(conversation.id, result.data.title);
        load();
      });
    }

    async function deleteConversation(conversation) {
      if (!window.confirm('Delete "' + conversation.title + '" and all its messages? This cannot be undone.')) {
        return false;
      }
      var result = await M.api("DELETE", "/v2/conversations/" + conversation.id);
      if (!result.ok) {
        M.showError(ui.error, result.error);
        return false;
      }
      options.removed(conversation.id);
      load();
      return true;
    }

    /* After a first exchange: a generated title (or the first words, kept). */
    async function title(id) {
      var result = await M.api("POST", "/v2/conversations/" + id + "/title");
      if (result.ok && result.data.generated) options.renamed(id, result.data.title);
      load();
    }

    /* -- the Archived list --------------------------------------------------------- */

    function archivedItem(conversation) {
      var unarchive = el("button", { type: "button", className: "button ghost small", text: "Unarchive" });
      var remove = el("button", { type: "button", className: "button ghost small danger-text", text: "Delete" });
      unarchive.addEventListener("click", async function () {
        var result = await M.api("PATCH", "/v2/conversations/" + conversation.id, { archived: false });
        if (!result.ok) {
          M.showError(ui.archivedError, result.error);
          return;
        }
        loadArchived();
        load();
      });
      remove.addEventListener("click", async function () {
        if (await deleteConversation(conversation)) loadArchived();
      });
      return el("li", { className: "archived-item", "data-id": conversation.id }, [
        openLink(conversation),
        el("span", { className: "muted small", text: new Date(conversation.archived_at).toLocaleDateString() }),
        unarchive,
        remove,
      ]);
    }

    async function loadArchived() {
      var result = await M.api("GET", "/v2/conversations/?archived=true&limit=" + ARCHIVED_PAGE);
      if (!result.ok) {
        M.showError(ui.archivedError, result.error);
        return;
      }
      M.showError(ui.archivedError, "");
      ui.archivedList.textContent = "";
      result.data.items.forEach(function (conversation) {
        ui.archivedList.appendChild(archivedItem(conversation));
      });
      ui.archivedEmpty.hidden = result.data.total !== 0;
    }

    /* -- the Share dialog ---------------------------------------------------------- */

    var share = {
      title: document.getElementById("share-name"),
      link: document.getElementById("share-link"),
      url: document.getElementById("share-url"),
      copy: document.getElementById("share-copy"),
      create: document.getElementById("share-create"),
      revoke: document.getElementById("share-revoke"),
      error: document.getElementById("share-error"),
    };

    function showShare(shareId) {
      var shared = Boolean(shareId);
      share.link.hidden = !shared;
      share.create.hidden = shared;
      share.revoke.hidden = !shared;
      share.url.value = shared ? window.location.origin + "/share/" + shareId : "";
    }

    function openShare(conversation) {
      state.sharing = conversation;
      share.title.textContent = conversation.title;
      M.showError(share.error, "");
      showShare(conversation.share_id);
      ui.share.showModal();
      (conversation.share_id ? share.url : share.create).focus();
    }

    share.create.addEventListener("click", async function () {
      var result = await M.api("POST", "/v2/conversations/" + state.sharing.id + "/share");
      if (!result.ok) {
        M.showError(share.error, result.error);
        return;
      }
      state.sharing.share_id = result.data.share_id;
      showShare(result.data.share_id);
      share.url.focus();
      share.url.select();
      load();
    });
    share.revoke.addEventListener("click", async function () {
      var result = await M.api("DELETE", "/v2/conversations/" + state.sharing.id + "/share");
      if (!result.ok) {
        M.showError(share.error, result.error);
        return;
      }
      state.sharing.share_id = null;
      showShare(null);
      share.create.focus();
      load();
    });
    share.copy.addEventListener("click", function () {
      M.copyText(share.url.value, share.copy);
    });
    ui.share.querySelectorAll("[data-close]").forEach(function (button) {
      button.addEventListener("click", function () {
        ui.share.close();
      });
    });
    ui.archived.querySelectorAll("[data-close]").forEach(function (button) {
      button.addEventListener("click", function () {
        ui.archived.close();
      });
    });

    /* -- wiring -------------------------------------------------------------------- */

    ui.search.addEventListener("input", function () {
      window.clearTimeout(state.searchTimer);
      state.searchTimer = window.setTimeout(load, 200);
    });
    ui.more.addEventListener("click", function () {
      load(true);
    });
    ui.archivedOpen.addEventListener("click", function () {
      loadArchived();
      ui.archived.showModal();
    });

    return { load: load, markActive: markActive, title: title };
  }

  M.Sidebar = Sidebar;
  M.groupConversations = groupConversations;
})();
