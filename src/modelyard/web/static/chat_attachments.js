/* The chat composer's attachments: the Attach button (or files dropped on the composer)
   uploads each file to POST /web/api/attachments, which checks it and answers with its id;
   a chip per file shows its name and size (×: DELETE, while unsent). The next message
   names the uploaded files in its attachment_ids; messages show their files as chips
   (images as thumbnails, served by GET /web/api/attachments/{id}). Images only for a model
   that takes them (data-vision on the model switcher's option): for any other, the file
   picker offers PDF and text files only, and an image picked, dropped or kept from before
   the switch is refused with what to do (the server refuses it too). */
(function () {
  "use strict";

  var M = window.Modelyard;
  var el = M.el;

  var button = document.getElementById("attach");
  var input = document.getElementById("attach-input");
  var list = document.getElementById("attachment-chips");
  var box = document.querySelector(".composer-box");
  var errorBox = document.getElementById("composer-error");
  var select = document.getElementById("model-select");
  if (!button || !input || !list) return;

  var everyType = input.getAttribute("accept") || "";
  var textTypes = everyType
    .split(",")
    .filter(function (type) {
      return type.indexOf("image/") !== 0;
    })
    .join(",");

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

  /* -- images only for a model that takes them ------------------------------------- */

  function selectedOption() {
    return select && select.selectedIndex >= 0 ? select.options[select.selectedIndex] : null;
  }

  function takesImages() {
    var option = selectedOption();
    return !!option && option.getAttribute("data-vision") === "true";
  }

  function modelName() {
    var option = selectedOption();
    return option ? option.textContent.split(" · ")[0].trim() : "This model";
  }

  function looksLikeImage(file) {
    return /^image\//.test(file.type || "") || /\.(png|jpe?g|gif|webp)$/i.test(file.name || "");
  }

  function noImages(filename) {
    return (
      modelName() +
      " does not take images, so " +
      filename +
      " cannot be sent to it. Choose a model that takes images (GPT-4o, Claude or Gemini, " +
      "for example), or attach PDF and text files."
    );
  }

  function removeImage(filename) {
    return (
      modelName() +
      " does not take images: remove " +
      filename +
      " to send, or choose a model that takes images (GPT-4o, Claude or Gemini, for example)."
    );
  }

  /* The pending image a model without images would be sent, if any. */
  function refusedImage() {
    if (takesImages()) return null;
    return (
      pending.filter(function (file) {
        return file.kind === "image";
      })[0] || null
    );
  }

  function syncModel() {
    var vision = takesImages();
    input.setAttribute("accept", vision ? everyType : textTypes);
    button.setAttribute("data-images", vision ? "true" : "false");
    button.title = vision
      ? "Attach images, PDF or text files"
      : "Attach PDF or text files (" + modelName() + " takes no images)";
    var image = refusedImage();
    if (image) M.showError(errorBox, removeImage(image.filename));
    else if (errorBox && / does not take images/.test(errorBox.textContent)) M.showError(errorBox, "");
  }

  function discard(file) {
    pending = pending.filter(function (other) {
      return other !== file;
    });
    renderChips();
    if (file.kind === "image" && !refusedImage() && errorBox && / does not take images/.test(errorBox.textContent)) {
      M.showError(errorBox, "");
    }
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
    if (entry.kind === "image" && !takesImages()) {
      discard(entry); /* an image under another name: refused once its kind is known */
      M.showError(errorBox, noImages(entry.filename));
      return;
    }
    renderChips();
  }

  async function uploadAll(files) {
    M.showError(errorBox, "");
    var refused = null;
    for (var i = 0; i < files.length; i += 1) {
      if (!takesImages() && looksLikeImage(files[i])) refused = refused || files[i].name;
      else await uploadOne(files[i]);
    }
    if (refused) M.showError(errorBox, noImages(refused));
  }

  button.addEventListener("click", function () {
    input.click();
  });
  if (select) select.addEventListener("change", syncModel);
  syncModel();
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
    /* Why the next message cannot be sent with its files (an image for a model that
       takes none), or null. */
    refusal: function () {
      var image = refusedImage();
      return image ? removeImage(image.filename) : null;
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
