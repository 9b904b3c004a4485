// The sidebar as a drawer on phones (static/css/layout.css shows the menu button under its
// breakpoint). Opening moves focus into the drawer and makes the rest of the page inert, and
// Tab goes round inside it; Escape, the close button, a tap on the backdrop or following a link
// close it, and focus goes back to the menu button.
(function () {
  "use strict";

  var PHONE = window.matchMedia("(max-width: 720px)");

  function parts() {
    return {
      layout: document.getElementById("layout"),
      button: document.getElementById("menu-button"),
      sidebar: document.getElementById("sidebar"),
      main: document.querySelector("#layout > .main")
    };
  }

  function isOpen() {
    var layout = document.getElementById("layout");
    return !!layout && layout.classList.contains("is-drawer-open");
  }

  function setOpen(open) {
    var p = parts();
    if (!p.layout || !p.button || !p.sidebar) return;
    p.layout.classList.toggle("is-drawer-open", open);
    p.button.setAttribute("aria-expanded", open ? "true" : "false");
    p.button.inert = open;
    if (p.main) p.main.inert = open;
  }

  function open() {
    setOpen(true);
    var p = parts();
    // The current chat if there is one, else New chat: where a reader goes next.
    var target = p.sidebar.querySelector(".conversation-link.is-current") || document.getElementById("new-conversation");
    if (target) target.focus();
  }

  function close() {
    if (!isOpen()) return;
    var p = parts();
    var hadFocus = p.sidebar.contains(document.activeElement);
    setOpen(false);
    if (hadFocus || document.activeElement === document.body) p.button.focus();
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target.closest) return;
    if (target.closest("#menu-button")) { event.preventDefault(); open(); }
    else if (target.closest("#drawer-close") || target.closest("#drawer-backdrop")) { event.preventDefault(); close(); }
  });

  // The controls a reader can reach in the drawer, in order (hidden ones left out).
  function focusables(sidebar) {
    var all = sidebar.querySelectorAll('a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])');
    return Array.prototype.filter.call(all, function (el) {
      // Of a radio group, Tab reaches the checked one only.
      if (el.type === "radio" && !el.checked) return false;
      return el.getClientRects().length > 0;
    });
  }

  // Tab goes round inside the open drawer, as in a dialog, instead of leaving the page.
  function wrapFocus(event) {
    var sidebar = document.getElementById("sidebar");
    var items = focusables(sidebar);
    if (!items.length) return;
    var first = items[0], last = items[items.length - 1];
    var inside = sidebar.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  }

  // Capturing, before the page's own Escape (which stops a reply): with the drawer open,
  // Escape only closes it. A rename in progress keeps its own Escape (sidebar.js).
  document.addEventListener("keydown", function (event) {
    if (event.key === "Tab" && isOpen()) { wrapFocus(event); return; }
    if (event.key !== "Escape" || !isOpen()) return;
    if (event.target.matches && event.target.matches(".rename-form input")) return;
    // A search being typed: the first Escape clears it (the browser's own), the next closes.
    if (event.target.matches && event.target.matches("#sidebar-search input[name=q]") && event.target.value) return;
    event.preventDefault();
    event.stopPropagation();
    close();
  }, true);

  // Widening the window past the breakpoint ends the drawer: the sidebar is a column again.
  PHONE.addEventListener("change", function (event) { if (!event.matches) setOpen(false); });
  // A page restored from the back/forward cache comes back with the drawer shut.
  window.addEventListener("pageshow", function (event) { if (event.persisted) setOpen(false); });
})();
