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
