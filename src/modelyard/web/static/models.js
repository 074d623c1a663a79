/* The language models page: filter the cards by text and provider, as you type. */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var search = document.querySelector("[data-model-search]");
    var provider = document.querySelector("[data-model-provider]");
    var noMatch = document.querySelector("[data-no-match]");
    if (!search || !provider) return;

    function apply() {
      var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      var wanted = provider.value;
      var shown = 0;
      document.querySelectorAll("#usable-models [data-model-card]").forEach(function (card) {
        var text = card.getAttribute("data-search") || "";
        var visible =
          (!wanted || card.getAttribute("data-provider") === wanted) &&
          words.every(function (word) {
            return text.indexOf(word) !== -1;
          });
        card.hidden = !visible;
        if (visible) shown += 1;
      });
      if (noMatch) noMatch.hidden = shown !== 0;
    }

    search.addEventListener("input", apply);
    provider.addEventListener("change", apply);
  });
})();
