// chatsite page behaviour. No inline scripts anywhere: the CSP forbids them.
(function () {
  "use strict";

  // Reconnect quickly after a server restart, never waiting more than ~5 s.
  function reconnectDelay(retry) {
    return Math.random() * Math.min(5000, 250 * Math.pow(2, retry));
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function composer() { return document.getElementById("composer"); }

  function resetKey(form) {
    var key = form && form.querySelector("input[name=idempotency_key]");
    if (key) key.value = newKey();
  }

  function lastMessageId() {
    var all = document.querySelectorAll("#messages [data-message-id]");
    return all.length ? all[all.length - 1].dataset.messageId : "";
  }

  // The composer shows Stop instead of Send while a reply is pending or streaming.
  function updateBusy() {
    var busy = !!document.querySelector('#messages [data-status="pending"], #messages [data-status="streaming"]');
    document.body.classList.toggle("is-busy", busy);
  }

  // Follow the newest text unless the reader scrolled up to read.
  var stickToBottom = true;
  function scroller() { return document.getElementById("messages-scroll"); }
  function scrollToBottom() {
    var el = scroller();
    if (el && stickToBottom) el.scrollTop = el.scrollHeight;
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) htmx.config.wsReconnectDelay = reconnectDelay;
    var form = composer();
    resetKey(form);
    updateBusy();
    var el = scroller();
    if (el) {
      el.addEventListener("scroll", function () {
        stickToBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
      });
      scrollToBottom();
      new MutationObserver(function () { updateBusy(); scrollToBottom(); })
        .observe(document.getElementById("messages"), { childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ["data-status"] });
    }
  });

  // After every (re)connect, ask the server for whatever this page is missing.
  document.addEventListener("htmx:wsOpen", function (event) {
    event.detail.socketWrapper.sendImmediately(JSON.stringify({ action: "sync", last: lastMessageId() }));
    document.body.classList.remove("is-offline");
  });
  document.addEventListener("htmx:wsClose", function () { document.body.classList.add("is-offline"); });

  // Never send an empty message; after a send, clear the box and take a fresh key.
  document.addEventListener("htmx:wsConfigSend", function (event) {
    var form = event.detail.elt;
    if (form.id !== "composer") return;
    if (!String(event.detail.parameters.message || "").trim()) event.preventDefault();
  });
  document.addEventListener("htmx:wsAfterSend", function (event) {
    var form = event.detail.elt;
    if (!form || form.id !== "composer") return;
    form.querySelector("textarea[name=message]").value = "";
    resetKey(form);
    stickToBottom = true;
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && target.matches("#composer textarea")) {
      event.preventDefault();
      if (target.value.trim()) target.form.requestSubmit();
    } else if (event.key === "Escape") {
      var stop = document.getElementById("stop");
      if (stop && document.body.classList.contains("is-busy")) { event.preventDefault(); stop.click(); }
    } else if (event.key.toLowerCase() === "k" && (event.ctrlKey || event.metaKey)) {
      var link = document.getElementById("new-conversation");
      if (link) { event.preventDefault(); window.location.href = link.href; }
    }
  });
})();
