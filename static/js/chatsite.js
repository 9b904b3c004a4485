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

  // The last message the page holds. A page opened at a search hit stops short of the
  // thread's end: the socket continues from the tail it was rendered with, and the rest
  // between is fetched as the reader scrolls down.
  function lastMessageId() {
    var newer = document.getElementById("load-newer");
    if (newer && newer.dataset.tail) return newer.dataset.tail;
    var all = document.querySelectorAll("#messages > [data-message-id]");
    return all.length ? all[all.length - 1].dataset.messageId : "";
  }

  // The status this page shows that message in ("" when the page stops short of it): when
  // it changed meanwhile (a reply ended while the socket was away), the server re-sends the
  // header's context gauge with it.
  function lastMessageStatus() {
    var newer = document.getElementById("load-newer");
    if (newer && newer.dataset.tail) return "";
    var all = document.querySelectorAll("#messages > [data-message-id]");
    return all.length ? all[all.length - 1].dataset.status || "" : "";
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
      var jump = document.getElementById("messages").dataset.jumpTo;
      var target = jump && document.getElementById("m-" + jump);
      if (target) {
        stickToBottom = false;
        target.classList.add("is-jump-target");
        target.scrollIntoView({ block: "center" });
      } else {
        scrollToBottom();
      }
      new MutationObserver(function () { updateBusy(); scrollToBottom(); })
        .observe(document.getElementById("messages"), { childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ["data-status"] });
    }
  });

  // After every (re)connect, ask the server for whatever this page is missing. The socket's
  // element says whether it is open (data-socket): once "open", the sync request has gone
  // out, and the server answers it before anything this page sends later.
  document.addEventListener("htmx:wsOpen", function (event) {
    // `again`: a reconnect, after which the server re-sends what its events may have changed;
    // `title`: the chat's title as shown, in case it changed before the socket first opened.
    var again = !!event.target.dataset.socket;
    var title = document.querySelector(".chat[data-conversation-id] .chat-title");
    event.detail.socketWrapper.sendImmediately(JSON.stringify({ action: "sync", last: lastMessageId(), status: lastMessageStatus(), again: again, title: title ? title.textContent.trim() : "" }));
    event.target.dataset.socket = "open";
    document.body.classList.remove("is-offline");
  });
  // 4401: the session that opened the socket is over. The socket is not reopened (the
  // ws extension reconnects only after 1006 and 1011-1013); the page says why and links to
  // the sign-in, and what was typed stays in the box.
  var CLOSE_SIGNED_OUT = 4401;
  document.addEventListener("htmx:wsClose", function (event) {
    event.target.dataset.socket = "closed";
    document.body.classList.add("is-offline");
    var signedOut = event.detail.event && event.detail.event.code === CLOSE_SIGNED_OUT;
    if (unconfirmed !== null) {
      restoreUnsent(unconfirmed, true);
      unconfirmed = null;
      var form = document.getElementById("composer");
      if (form && !signedOut) showNotice(form.dataset.connectionLost);
    }
    if (signedOut) showSignedOut(event.target);
  });
  function showSignedOut(socketElt) {
    var notice = document.getElementById("notice");
    if (!notice) return;
    notice.textContent = socketElt.dataset.signedOut + " ";
    var link = document.createElement("a");
    link.href = socketElt.dataset.loginUrl;
    link.textContent = socketElt.dataset.signInLabel || "Sign in";
    notice.appendChild(link);
    notice.className = "notice notice--error";
    document.body.classList.add("is-signed-out");
  }

  // --- Images: uploaded as soon as they are chosen or pasted, sent as chips' ids. -----

  function hasImages() { return !!document.querySelector("#composer-attachments [name=attachments]"); }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }

  function showNotice(text) {
    var notice = document.getElementById("notice");
    if (!notice) return;
    notice.textContent = text;
    notice.className = "notice notice--error";
  }

  function uploadImage(file) {
    var input = document.getElementById("attach-input");
    var box = document.getElementById("composer-attachments");
    if (!input || !box || !file) return;
    var body = new FormData();
    body.append("file", file, file.name || "pasted-image");
    fetch(input.dataset.uploadUrl, {
      method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() }
    }).then(function (response) {
      return response.text().then(function (text) {
        if (response.ok) box.insertAdjacentHTML("beforeend", text);
        else showNotice(text || input.dataset.uploadFailed);
      });
    }).catch(function () { showNotice(input.dataset.uploadFailed); });
  }

  document.addEventListener("change", function (event) {
    if (event.target.id !== "attach-input") return;
    Array.prototype.forEach.call(event.target.files, uploadImage);
    event.target.value = "";
  });
  document.addEventListener("paste", function (event) {
    if (!document.getElementById("attach-input") || !event.clipboardData) return;
    var files = Array.prototype.filter.call(event.clipboardData.files || [], function (f) {
      return f.type.indexOf("image/") === 0;
    });
    if (!files.length) return;
    event.preventDefault();
    files.forEach(uploadImage);
  });
  document.addEventListener("click", function (event) {
    var remove = event.target.closest && event.target.closest(".attachment-remove");
    if (remove) remove.closest(".attachment-chip").remove();
  });

  // Never send an empty message (images alone are fine); after a send, clear the box and
  // the images, and take a fresh key.
  document.addEventListener("htmx:wsConfigSend", function (event) {
    var form = event.detail.elt;
    if (form.id !== "composer") return;
    var text = String(event.detail.parameters.message || "");
    if (!text.trim() && !hasImages()) { event.preventDefault(); return; }
    var limit = parseInt(form.dataset.maxChars, 10);
    if (limit && text.trim().length > limit) {
      event.preventDefault();
      showNotice(form.dataset.tooLong
        .replace("%(length)s", text.trim().length.toLocaleString("en"))
        .replace("%(limit)s", limit.toLocaleString("en")));
    }
  });
  // The text sent stays with the form until the server answers: its empty notice means the
  // message was taken; an error notice puts the text back in an empty box, so a refused
  // send (over budget, too long, a bad frame) loses nothing.
  var unconfirmed = null;
  document.addEventListener("htmx:wsAfterSend", function (event) {
    var form = event.detail.elt;
    if (!form || form.id !== "composer") return;
    var box = form.querySelector("textarea[name=message]");
    var key = form.querySelector("input[name=idempotency_key]");
    unconfirmed = { text: box.value, key: key ? key.value : "" };
    box.value = "";
    var chips = document.getElementById("composer-attachments");
    if (chips) chips.innerHTML = "";
    resetKey(form);
    stickToBottom = true;
  });
  function noticeArrived() {
    var notice = document.getElementById("notice");
    if (unconfirmed === null || !notice) return;
    var sent = unconfirmed;
    unconfirmed = null;
    if (notice.classList.contains("notice--error")) restoreUnsent(sent, false);
  }
  // With its key when the connection dropped: the server may have taken it after all, and
  // the same key sent again is the same message, never a second one.
  function restoreUnsent(sent, withKey) {
    var form = document.getElementById("composer");
    var box = form && form.querySelector("textarea[name=message]");
    if (!box || box.value) return;
    box.value = sent.text;
    var key = form.querySelector("input[name=idempotency_key]");
    if (withKey && key && sent.key) key.value = sent.key;
  }
  // After the frame is swapped in (the notice's own swap event fires on the element it
  // replaced, which has left the document by then).
  document.addEventListener("htmx:wsAfterMessage", function (event) {
    if (unconfirmed !== null && String(event.detail.message).indexOf('id="notice"') >= 0) noticeArrived();
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && target.matches("#composer textarea")) {
      event.preventDefault();
      if (target.value.trim() || hasImages()) target.form.requestSubmit();
    } else if (event.key === "Escape") {
      var stop = document.getElementById("stop");
      if (stop && document.body.classList.contains("is-busy")) { event.preventDefault(); stop.click(); }
    } else if (event.key.toLowerCase() === "k" && (event.ctrlKey || event.metaKey)) {
      var link = document.getElementById("new-conversation");
      if (link) { event.preventDefault(); window.location.href = link.href; }
    }
  });

  // --- Long threads: older pages load above without moving what the reader sees. ------

  var heightBeforeOlder = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var el = scroller();
    if (el && event.detail.target && event.detail.target.id === "load-older") {
      heightBeforeOlder = el.scrollHeight - el.scrollTop;
    }
  });
  document.addEventListener("htmx:afterSwap", function () {
    var el = scroller();
    if (el && heightBeforeOlder !== null) {
      el.scrollTop = el.scrollHeight - heightBeforeOlder;
      heightBeforeOlder = null;
    }
  });
  // A new branch (an edit, a regeneration, another version) replaces the whole thread.
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "messages") {
      stickToBottom = true;
      scrollToBottom();
    }
  });

  // --- Editing a message: the form opens in place with the message's text. -----------

  function closeEdit(form) {
    form.hidden = true;
    form.closest(".message").classList.remove("is-editing");
  }

  document.addEventListener("click", function (event) {
    var edit = event.target.closest && event.target.closest(".edit-message");
    if (edit) {
      var message = edit.closest(".message");
      var form = message.querySelector(".edit-form");
      var box = form.querySelector("textarea[name=message]");
      box.value = message.querySelector(".message-content").textContent;
      form.hidden = false;
      message.classList.add("is-editing");
      box.focus();
      return;
    }
    var cancel = event.target.closest && event.target.closest(".edit-cancel");
    if (cancel) closeEdit(cancel.closest(".edit-form"));
  });
  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches(".edit-form textarea")) return;
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      closeEdit(box.form);
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (box.value.trim()) box.form.requestSubmit();
    }
  }, true);

  // The header's context gauge is swapped whole after every reply: a panel the reader
  // opened stays open.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "context-gauge" || !target.open) return;
    var incoming = event.detail.fragment.querySelector("#context-gauge");
    if (incoming) incoming.open = true;
  });
})();
