// The sidebar's inline rename. Saving, archiving, deleting and search are plain htmx
// attributes in the templates; this only opens and closes the rename form.
(function () {
  "use strict";

  function itemOf(el) { return el && el.closest(".conversation-item"); }

  function openRename(item) {
    var form = item.querySelector(".rename-form");
    var input = form && form.querySelector("input[name=title]");
    if (!input) return;
    input.value = input.dataset.original || "";
    form.hidden = false;
    item.classList.add("is-renaming");
    input.focus();
    input.select();
  }

  function closeRename(item) {
    var form = item.querySelector(".rename-form");
    if (!form) return;
    var input = form.querySelector("input[name=title]");
    if (input) input.value = input.dataset.original || "";
    var error = form.querySelector(".rename-error");
    if (error) error.remove();
    form.hidden = true;
    item.classList.remove("is-renaming");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-sidebar-rename]");
    if (button && itemOf(button)) {
      event.preventDefault();
      openRename(itemOf(button));
    }
  });

  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key !== "Escape" || !input.matches) return;
    if (input.matches(".rename-form input[name=title]")) {
      // Ours alone: the page's Escape (stop the reply) must not also fire.
      event.preventDefault();
      event.stopPropagation();
      var item = itemOf(input);
      closeRename(item);
      var button = item.querySelector("[data-sidebar-rename]");
      if (button) button.focus();
    } else if (input.matches("#sidebar-search input[name=q]")) {
      // Escape clears the search box (the browser's default); it must not stop a reply.
      event.stopPropagation();
    }
  }, true);

  // After a rename the item is new: give keyboard focus back to its link. Only after this
  // tab's rename, and only when the swap took the focus: an item pushed by the socket (a
  // rename elsewhere, a generated title) must not take it from what the reader is doing.
  // The socket's copy of this tab's own rename may land before or after the response.
  var renamedHere = null;
  function focusLost() {
    return !document.activeElement || document.activeElement === document.body;
  }
  document.addEventListener("htmx:load", function (event) {
    var item = event.target;
    if (item.matches && item.matches(".conversation-item") && item.id === renamedHere && focusLost() && !item.classList.contains("is-renaming")) {
      var link = item.querySelector(".conversation-link");
      if (link) link.focus();
    }
  });

  // Enter submits the form (htmx posts it); an unchanged or blank title is no rename.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches(".rename-form")) return;
    var input = form.querySelector("input[name=title]");
    var value = input.value.trim();
    if (!value || value === (input.dataset.original || "")) {
      event.preventDefault();
      event.stopImmediatePropagation();
      closeRename(itemOf(form));
      return;
    }
    renamedHere = itemOf(form).id;
  }, true);

  // Clicking or tabbing away cancels, like Escape.
  document.addEventListener("focusout", function (event) {
    var form = event.target.closest && event.target.closest(".rename-form");
    if (!form || form.hidden) return;
    var item = itemOf(form);
    if (event.relatedTarget && item.contains(event.relatedTarget)) return;
    closeRename(item);
  });
})();
