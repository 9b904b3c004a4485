// The language switch (templates/_language_switch.html): picking a language applies it at
// once. Without this script the form's own button submits it.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-language-switch]").forEach(function (form) {
      form.classList.add("language-switch--auto"); // the CSS hides the button
    });
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.matches || !select.matches("[data-language-switch] select")) return;
    if (select.form.requestSubmit) select.form.requestSubmit();
    else select.form.submit();
  });
})();
