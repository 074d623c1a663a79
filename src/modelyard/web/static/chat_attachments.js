/* The chat composer's attachments: the Attach button (or files dropped on the composer)
   uploads each file to POST /web/api/attachments, which checks it and answers with its id;
   a chip per file shows its name and size (×: DELETE, while unsent). The next message
   names the uploaded files in its attachment_ids; messages show their files as chips
   (images as thumbnails, served by GET /web/api/attachments/{id}). */
(function () {
  "use strict";

  var M = window.Modelyard;
  var el = M.el;

  var button = document.getElementById("attach");
  var input = document.getElementById("attach-input");
  var list = document.getElementById("attachment-chips");
  var box = document.querySelector(".composer-box");
  var errorBox = document.getElementById("composer-error");
  if (!button || !input || !list) return;

  /* {id, filename, kind, size_bytes, token_estimate, uploading, node} */
  var pending = [];

  function sizeText(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MB";
    if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
    return bytes + " B";
  }

  function describe(file) {
    if (file.kind === "image") return sizeText(file.size_bytes);
    return sizeText(file.size_bytes) + " · ~" + M.formatCount(file.token_estimate) + " tokens";
  }

  function renderChips() {
    list.textContent = "";
    list.hidden = pending.length === 0;
    pending.forEach(function (file) {
      var remove = el("button", { type: "button", className: "chip-remove", text: "×" });
      remove.setAttribute("aria-label", "Remove " + file.filename);
      remove.disabled = !!file.uploading;
      remove.addEventListener("click", function () {
        discard(file);
      });
      var label = file.uploading ? "uploading…" : describe(file);
      list.appendChild(
        el("li", { className: "chip" + (file.uploading ? " uploading" : ""), "data-attachment-id": file.id || null }, [
          el("span", { className: "chip-name", text: file.filename }),
          el("span", { className: "chip-size", text: label }),
          remove,
        ])
      );
    });
  }

  function discard(file) {
    pending = pending.filter(function (other) {
      return other !== file;
    });
    renderChips();
    if (file.id) M.api("DELETE", "/web/api/attachments/" + file.id);
  }

  async function uploadOne(file) {
    var entry = { filename: file.name, uploading: true, size_bytes: file.size };
    pending.push(entry);
    renderChips();
    var form = new FormData();
    form.append("file", file, file.name);
    var response = null;
    var data = null;
    try {
      response = await fetch("/web/api/attachments", {
        method: "POST",
        body: form,
        headers: { Accept: "application/json", "X-CSRF-Token": M.csrfToken() },
        credentials: "same-origin",
      });
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (!response || !response.ok) {
      pending = pending.filter(function (other) {
        return other !== entry;
      });
      renderChips();
      M.showError(errorBox, M.errorMessage(data, response ? response.status : 0));
      return;
    }
    Object.assign(entry, data, { uploading: false });
    renderChips();
  }

  async function uploadAll(files) {
    M.showError(errorBox, "");
    for (var i = 0; i < files.length; i += 1) await uploadOne(files[i]);
  }

  button.addEventListener("click", function () {
    input.click();
  });
  input.addEventListener("change", function () {
    var files = Array.prototype.slice.call(input.files || []);
    input.value = "";
    uploadAll(files);
  });
  if (box) {
    box.addEventListener("dragover", function (event) {
      if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) {
        event.preventDefault();
        box.classList.add("dropping");
      }
    });
    box.addEventListener("dragleave", function () {
      box.classList.remove("dropping");
    });
    box.addEventListener("drop", function (event) {
      box.classList.remove("dropping");
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      uploadAll(Array.prototype.slice.call(event.dataTransfer.files));
    });
  }

  /* A message's files, as chips (images as thumbnails). */
  function messageChips(files) {
    if (!files || !files.length) return null;
    return el(
      "ul",
      { className: "message-files", "aria-label": "Attached files" },
      files.map(function (file) {
        var url = "/web/api/attachments/" + file.id;
        var link = el("a", { href: url, target: "_blank", rel: "noopener", className: "chip" });
        if (file.kind === "image") {
          link.classList.add("image-chip");
          link.appendChild(el("img", { src: url, alt: file.filename, loading: "lazy" }));
        } else {
          link.appendChild(el("span", { className: "chip-name", text: file.filename }));
          link.appendChild(el("span", { className: "chip-size", text: describe(file) }));
        }
        return el("li", {}, [link]);
      })
    );
  }

  window.ModelyardAttachments = {
    /* Whether a file is still uploading (the message waits). */
    busy: function () {
      return pending.some(function (file) {
        return file.uploading;
      });
    },
    /* How many files are uploaded for the next message. */
    count: function () {
      return pending.filter(function (file) {
        return !file.uploading;
      }).length;
    },
    /* The uploaded files for the next message, removed from the composer. */
    take: function () {
      var taken = pending.filter(function (file) {
        return !file.uploading;
      }).map(function (file) {
        return {
          id: file.id,
          filename: file.filename,
          kind: file.kind,
          size_bytes: file.size_bytes,
          token_estimate: file.token_estimate,
        };
      });
      pending = [];
      renderChips();
      return taken;
    },
    messageChips: messageChips,
  };
})();
