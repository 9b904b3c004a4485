// The theme: system (follow prefers-color-scheme), light or dark, chosen per browser.
//
// Loaded without `defer` at the top of <head>, so the choice is on <html> before the first
// paint (no flash of the other theme). The server already renders data-theme from the
// `theme` cookie; localStorage is the browser's own record and wins if the two disagree (a
// cookie cleared, or set by another tab meanwhile), and the cookie is rewritten to match so
// the next page comes from the server right. static/css/theme.css does the rest.
(function () {
  "use strict";

  var KEY = "chatsite-theme";
  var CHOICES = ["system", "light", "dark"];
  var root = document.documentElement;

  function stored() {
    try { return localStorage.getItem(KEY); } catch (error) { return null; }
  }

  function fromCookie() {
    var match = document.cookie.match(/(?:^|;\s*)theme=(light|dark)(?:;|$)/);
    return match ? match[1] : "system";
  }

  function writeCookie(choice) {
    var secure = location.protocol === "https:" ? "; secure" : "";
    if (choice === "system") document.cookie = "theme=; path=/; max-age=0; samesite=lax" + secure;
    else document.cookie = "theme=" + choice + "; path=/; max-age=31536000; samesite=lax" + secure;
  }

  // The attribute for the stylesheets; the meta tag for what is drawn before they load
  // (the page's canvas, the scrollbars).
  function apply(choice) {
    var explicit = choice === "light" || choice === "dark";
    if (explicit) root.setAttribute("data-theme", choice);
    else root.removeAttribute("data-theme");
    var meta = document.querySelector('meta[name="color-scheme"]');
    if (meta) meta.setAttribute("content", explicit ? choice : "light dark");
  }

  function current() {
    var choice = stored();
    return CHOICES.indexOf(choice) >= 0 ? choice : fromCookie();
  }

  function choose(choice) {
    if (CHOICES.indexOf(choice) < 0) return;
    try { localStorage.setItem(KEY, choice); } catch (error) { /* private mode: the cookie still holds it */ }
    writeCookie(choice);
    apply(choice);
  }

  var initial = current();
  apply(initial);
  if (initial !== fromCookie()) writeCookie(initial);

  // The switch (templates/_theme_switch.html) on every page: shown, and set to the choice.
  function showSwitches() {
    var choice = current();
    document.querySelectorAll("[data-theme-switch]").forEach(function (box) {
      box.hidden = false;
      var input = box.querySelector('input[value="' + choice + '"]');
      if (input) input.checked = true;
    });
  }

  document.addEventListener("DOMContentLoaded", showSwitches);
  document.addEventListener("htmx:load", showSwitches);
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input.matches && input.matches("[data-theme-switch] input[name=theme]")) choose(input.value);
  });
  // Another tab changed it: follow.
  window.addEventListener("storage", function (event) {
    if (event.key === KEY) { apply(current()); showSwitches(); }
  });
})();
