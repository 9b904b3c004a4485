// The chat's controls: the settings popover closes once a Save went through (the saved
// form comes back with data-saved), so the thread is in view again with the new settings.
// The model switch and the composer's switches are plain htmx attributes in the templates.
(function () {
  "use strict";

  document.addEventListener("htmx:afterSettle", function () {
    var form = document.querySelector("#conversation-settings[data-saved]");
    if (!form) return;
    form.removeAttribute("data-saved");
    var popover = form.closest("details");
    if (popover) popover.open = false;
  });
})();

// The new-chat page's Think and JSON: no conversation yet to save them on, so a press
// flips the hidden field the new-chat form sends with the first message.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-new-chat] .switch-button");
    if (!button) return;
    var field = button.parentNode.querySelector('input[name="' + button.dataset.switch + '"]');
    var on = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", on ? "true" : "false");
    if (field) field.value = on ? "on" : "off";
  });
})();
