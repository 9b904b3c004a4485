// What the page's socket pushes about the user's conversations (conversations/user_events.py)
// is plain htmx out-of-band swaps; this only keeps the tab's own title with the chat's.
(function () {
  "use strict";

  document.addEventListener("htmx:wsAfterMessage", function () {
    var heading = document.querySelector(".chat[data-conversation-id] .chat-title");
    if (!heading) return;
    var title = heading.textContent.trim() + " · chatsite";
    if (document.title !== title) document.title = title;
  });
})();
