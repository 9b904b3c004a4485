"""What one window of a thread shows: the conversation page, the older and newer pages
fetched as the reader scrolls, and the thread pushed to every socket when the branch on
screen changes. All of them render `conversations/_thread.html`. The header's context gauge
goes with what changes it: a finished reply, and a change of branch.

A page never loads more than PAGE_SIZE messages, wherever it sits in the thread, so a
5,000-message conversation opens as fast as a short one.
"""

import logging
from dataclasses import dataclass, field

from conversations import presenters, selectors
from conversations.context import context_gauge, summary_for_page, summary_latest
from conversations.models import Conversation, ConversationSummary, Message
from conversations.rendering import render_markdown

log = logging.getLogger(__name__)

# A jump to a message shows this many messages above it (the rest of the page below it).
JUMP_CONTEXT = 10


@dataclass
class ThreadPage:
    conversation: Conversation
    messages: list[Message]
    # More of the thread exists above / below this window (fetched on scroll).
    has_older: bool = False
    has_newer: bool = False
    # The thread's last message when the window stops short of it: newer pages stop there
    # and the socket continues after it.
    tail_uuid: str = ""
    summary: ConversationSummary | None = None
    divider_after: str | None = None
    views: list[presenters.MessageView] = field(default_factory=list)

    @property
    def first_uuid(self) -> str:
        return str(self.messages[0].uuid) if self.messages else ""

    @property
    def last_uuid(self) -> str:
        return str(self.messages[-1].uuid) if self.messages else ""

    def context(self) -> dict:
        """The template variables of `_thread.html` (and of the divider inside it)."""
        summary = self.summary
        return {
            "conversation": self.conversation,
            "thread": self.views,
            "page": self,
            "summary": summary,
            "summary_html": render_markdown(summary.text) if summary else "",
            "divider_after": self.divider_after,
        }


def message_html(message: Message, *, show_all: bool = False) -> str:
    """One message's piece of UI, read and rendered (a finished reply's final push);
    `show_all`: whole, however long (a collapsed message's "Show all")."""
    view = presenters.view_of_message(selectors.read_message(message))
    view.show_all = show_all
    return presenters.render_message(view)


def reply_final_html(reply: Message) -> str:
    """What a finished reply pushes to every socket (live/rendering.py): the message, and
    the header's context gauge out of band (the reply moved the window and the cost)."""
    html = message_html(reply)
    try:
        return html + gauge_html(reply.conversation, oob=True)
    except Exception:  # the gauge is a hint: the reply's final state goes out regardless
        log.exception("the context gauge after reply %s failed", reply.uuid)
        return html


def gauge_html(conversation: Conversation, *, oob: bool = False) -> str:
    """The header's context gauge of the branch on screen, read and rendered."""
    return presenters.render_gauge(context_gauge(conversation), oob=oob)


def messages_appended_html(messages: list[Message]) -> str:
    """Messages added at the end of the thread, for every socket showing it."""
    return presenters.render_messages_appended(selectors.read_messages(messages))


def _finish(page: ThreadPage, *, newest_summary_only: bool = False) -> ThreadPage:
    placement = summary_for_page(page.conversation, page.messages)
    shown = placement.after_uuid is not None
    if shown and newest_summary_only:
        # An older page shows the divider only for the summary the model now receives.
        shown = summary_latest(page.conversation) == placement.summary
    if shown:
        page.summary, page.divider_after = placement.summary, placement.after_uuid
    page.views = presenters.views_of_messages(selectors.read_messages(page.messages))
    return page


def latest_page(conversation: Conversation) -> ThreadPage:
    """The newest messages of the thread on screen: what the conversation page opens on."""
    messages = selectors.thread_messages(conversation, limit=selectors.PAGE_SIZE)
    has_older = bool(messages) and messages[0].parent_id is not None
    return _finish(ThreadPage(conversation, messages, has_older=has_older))


def older_page(conversation: Conversation, before: Message) -> ThreadPage:
    """The PAGE_SIZE messages above `before` on its thread."""
    messages = selectors.thread_messages(
        conversation, limit=selectors.PAGE_SIZE, before_id=before.id
    )
    has_older = bool(messages) and messages[0].parent_id is not None
    page = ThreadPage(conversation, messages, has_older=has_older)
    return _finish(page, newest_summary_only=True)


def _window(
    conversation: Conversation,
    path: list[int],
    start: int,
    end: int,
    *,
    tail: Message | None = None,
) -> ThreadPage:
    """path[start:end]; `tail`, when the caller has it, is the message path[-1]."""
    start, end = max(start, 0), min(end, len(path))
    messages = selectors.messages_by_ids(path[start:end])
    page = ThreadPage(conversation, messages, has_older=start > 0, has_newer=end < len(path))
    if page.has_newer:
        tail_uuid = tail.uuid if tail is not None else selectors.message_uuid(path[-1])
        page.tail_uuid = str(tail_uuid)
    return _finish(page, newest_summary_only=True)


def page_around(conversation: Conversation, target: Message) -> ThreadPage | None:
    """A window with `target` near its top, on the thread on screen; None when `target`
    is not on that thread (the caller switches branch first)."""
    path = selectors.thread_path_ids(conversation)
    if target.id not in path:
        return None
    index = path.index(target.id)
    start = index - JUMP_CONTEXT
    if len(path) - start <= selectors.PAGE_SIZE:
        return latest_page(conversation)  # the jump lands in the latest page anyway
    return _window(conversation, path, start, start + selectors.PAGE_SIZE)


def newer_page(conversation: Conversation, after: Message, until: Message | None) -> ThreadPage:
    """The PAGE_SIZE messages below `after`, stopping at `until` (inclusive): what the
    socket has delivered since the page opened is already below it."""
    path = selectors.thread_path_ids(conversation)
    if after.id not in path:
        return ThreadPage(conversation, [])
    if until is not None and until.id in path:
        path = path[: path.index(until.id) + 1]
    else:
        until = None
    start = path.index(after.id) + 1
    return _window(conversation, path, start, start + selectors.PAGE_SIZE, tail=until)
