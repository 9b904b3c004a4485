// Comfort on the chat page: math typeset with KaTeX, and Copy buttons for messages and code.
//
// Model text is never parsed as HTML here. The server sends math as the escaped text of
// <span class="math-inline|math-display"> (conversations/rendering.py); this script reads
// that text with textContent and lets katex.render build DOM nodes, with trust off so
// \href, \url, \html* and \includegraphics stay inert. A streaming reply arrives as rendered
// HTML too (static/js/streaming.js), block by block; the MutationObserver below picks up
// each block as it is swapped in.
// Every visible word comes from data-* attributes the templates render (translatable).
(function () {
  "use strict";

  var MATH = "span.math-inline:not([data-typeset]), span.math-display:not([data-typeset])";
  var CODE = ".message-content pre:not([data-copy-ready])";
  // Longer TeX stays as text: typesetting it could stall the tab for no reader's benefit.
  var MAX_TEX_LENGTH = 5000;
  var KATEX_OPTIONS = {
    throwOnError: false, // a typo shows red TeX, it does not break the reply
    trust: false,
    strict: "ignore",
    maxSize: 20, // em: no giant \rule or \kern covering the page
    maxExpand: 1000, // macro expansions (KaTeX's default, stated): a \def loop ends
    output: "htmlAndMathml" // MathML keeps the TeX as an annotation for screen readers
  };
  var FEEDBACK_MS = 1600;

  // --- Math ----------------------------------------------------------------------------

  function typeset(el) {
    el.setAttribute("data-typeset", "");
    var tex = el.textContent;
    if (!window.katex || !tex.trim() || tex.length > MAX_TEX_LENGTH) return;
    var options = Object.assign({ displayMode: el.classList.contains("math-display") }, KATEX_OPTIONS);
    try {
      katex.render(tex, el, options);
    } catch (error) {
      el.textContent = tex; // whatever KaTeX left behind, the reader gets the source back
    }
  }

  // --- Copy ----------------------------------------------------------------------------

  // A hidden textarea and execCommand: for browsers without the async clipboard (or a
  // page that is not a secure context).
  function legacyCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-buffer";
    var focused = document.activeElement;
    document.body.appendChild(area);
    area.focus();
    area.select();
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    area.remove();
    if (focused && focused.focus) focused.focus();
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return legacyCopy(text); });
    }
    return legacyCopy(text);
  }

  // Labels for a message's buttons: the message's own Copy button carries them.
  function labelsFor(el) {
    var article = el.closest("article.message");
    var source = article && article.querySelector(".copy-message");
    return source ? source.dataset : null;
  }

  function showFeedback(button, label, ok) {
    clearTimeout(button.copyTimer);
    if (!button.dataset.restoreLabel) button.dataset.restoreLabel = button.textContent;
    button.textContent = label;
    button.classList.toggle("is-copied", ok);
    button.classList.toggle("is-copy-failed", !ok);
    button.copyTimer = setTimeout(function () {
      button.textContent = button.dataset.restoreLabel;
      button.classList.remove("is-copied", "is-copy-failed");
    }, FEEDBACK_MS);
  }

  function copyFrom(button, text) {
    var labels = labelsFor(button) || button.dataset;
    copyText(text).then(
      function () { showFeedback(button, labels.copiedLabel || button.textContent, true); },
      function () { showFeedback(button, labels.failedLabel || button.textContent, false); }
    );
  }

  // A reply's button carries its Markdown source; a user message (and a huge reply) is
  // copied from the page, where a user's text is shown exactly as written.
  function messageText(button) {
    if (button.hasAttribute("data-copy-text")) return button.dataset.copyText;
    var article = button.closest("article.message");
    var content = article && article.querySelector(".message-content");
    if (!content) return "";
    return article.dataset.role === "user" ? content.textContent : content.innerText;
  }

  function codeOf(pre) {
    var code = pre.querySelector("code") || pre;
    return code.textContent.replace(/\n$/, ""); // the block's closing newline is not code
  }

  // Wraps a code block so its button stays put while the code scrolls sideways.
  function addCodeButton(pre) {
    pre.setAttribute("data-copy-ready", "");
    var labels = labelsFor(pre);
    if (!labels || !labels.copyLabel) return;
    var wrapper = document.createElement("div");
    wrapper.className = "code-block";
    pre.parentNode.insertBefore(wrapper, pre);
    wrapper.appendChild(pre);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy-code";
    button.textContent = labels.copyLabel;
    if (labels.codeLabel) button.setAttribute("aria-label", labels.codeLabel);
    wrapper.appendChild(button);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".copy-message, .copy-code");
    if (!button) return;
    if (button.classList.contains("copy-message")) {
      copyFrom(button, messageText(button));
    } else {
      copyFrom(button, codeOf(button.parentNode.querySelector("pre")));
    }
  });

  // --- Applying it to the page and to everything swapped in later ----------------------

  function enhance(root) {
    if (!root.querySelectorAll) return;
    if (root.matches && root.matches(MATH)) typeset(root);
    Array.prototype.forEach.call(root.querySelectorAll(MATH), typeset);
    if (root.matches && root.matches(CODE)) addCodeButton(root);
    Array.prototype.forEach.call(root.querySelectorAll(CODE), addCodeButton);
  }

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    // Finished replies arrive over the websocket, older pages over htmx: whatever element
    // is added, enhance it. Words appended to a streaming block arrive as text nodes and
    // cost nothing here.
    new MutationObserver(function (records) {
      records.forEach(function (record) {
        Array.prototype.forEach.call(record.addedNodes, function (node) {
          if (node.nodeType === Node.ELEMENT_NODE) enhance(node);
        });
      });
    }).observe(document.body, { childList: true, subtree: true });
  });
})();
