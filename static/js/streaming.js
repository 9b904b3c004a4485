// A streaming reply's content arrives as Markdown already rendered and sanitised on the
// server (conversations/streaming_markdown.py). A frame either appends words to the last
// block (a plain htmx swap into "#m-…-text > :last-child") or carries data-keep="K": the
// page keeps the content's first K blocks, drops the rest (the tail, rendered again from
// its whole text), and htmx appends the frame's blocks. No model text is parsed here.
(function () {
  "use strict";

  // Each block is one element followed by its newline, as the renderer writes it.
  function dropAfter(target, keep) {
    var node = target.firstChild;
    var seen = 0;
    while (node && seen < keep) {
      if (node.nodeType === Node.ELEMENT_NODE) seen++;
      node = node.nextSibling;
    }
    if (keep > 0 && node && node.nodeType === Node.TEXT_NODE && !node.nodeValue.trim()) {
      node = node.nextSibling;
    }
    while (node) {
      var next = node.nextSibling;
      target.removeChild(node);
      node = next;
    }
  }

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var fragment = event.detail.fragment;
    if (!fragment || !fragment.getAttribute) return;
    var keep = fragment.getAttribute("data-keep");
    if (keep === null) return;
    dropAfter(event.detail.target, parseInt(keep, 10) || 0);
  });
})();
