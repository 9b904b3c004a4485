"""What a user's sockets are sent when one of the user's conversations changes elsewhere
(conversations/user_events.py): the sidebar's list, or one item of it with the chat title,
the open chat's summary divider and context gauge, or the word that the chat on screen is
gone. Each piece is the template the page itself renders, read afresh for the socket that
sends it (`on_screen`: the conversation its page shows, None on a page without a chat).
"""

from django.contrib.auth.models import User
from django.template.loader import render_to_string

from conversations import pages, selectors
from conversations.context import summary_placement_on_thread
from conversations.models import Conversation
from conversations.providers import catalogue
from conversations.rendering import render_markdown
from conversations.user_events import Change


def conversation_change_html(
    user: User,
    conversation_uuid: str,
    change: str,
    on_screen: Conversation | None,
    *,
    archived_shown: bool = False,
) -> str:
    """`archived_shown`: the page lists the archived chats (the archived page)."""
    archived = archived_list_html(user) if archived_shown and change != Change.CREATED else ""
    if change == Change.RENAMED:
        return _renamed_html(user, conversation_uuid, on_screen) + archived
    if change == Change.MOVED:
        return _moved_html(user, conversation_uuid, on_screen)
    html = sidebar_list_html(user, on_screen) + archived
    if change == Change.DELETED and on_screen and str(on_screen.uuid) == conversation_uuid:
        html += render_to_string("conversations/_chat_deleted.html")
    return html


def title_html_if_changed(user: User, on_screen: Conversation, shown: str) -> str:
    """The chat's item and header when its title is no longer the one its page shows (it
    changed between the page's render and its socket's first sync: a title generated
    right after a quick first reply)."""
    fresh = selectors.conversation_get_for_user_or_none(user, on_screen.uuid)
    if fresh is None or fresh.display_title == shown:
        return ""
    return _renamed_html(user, str(on_screen.uuid), on_screen)


def sidebar_list_html(user: User, on_screen: Conversation | None) -> str:
    """The sidebar's whole list, out of band: a conversation came, went or moved."""
    context = {
        "conversations": selectors.conversation_list_for_user(user),
        "conversation": on_screen,
        "oob": True,
    }
    return render_to_string("conversations/_conversation_list.html", context)


def archived_list_html(user: User) -> str:
    context = {"archived": selectors.conversation_list_archived_for_user(user), "oob": True}
    return render_to_string("conversations/_archived_list.html", context)


def _renamed_html(user: User, conversation_uuid: str, on_screen: Conversation | None) -> str:
    """The renamed item, and the header's title when that chat is on screen."""
    conversation = selectors.conversation_get_for_user_or_none(user, conversation_uuid)
    if conversation is None or conversation.archived:
        return ""  # deleted meanwhile (its own event follows), or in no list of this page
    current = on_screen is not None and on_screen.pk == conversation.pk
    context = {"item": conversation, "conversation": on_screen, "rename_current": current}
    return render_to_string("conversations/_renamed.html", context)


# Where a chat active again goes: the top of the sidebar's Today group.
TODAY_ITEMS = "section[data-group=today] > ul"


def _moved_html(user: User, conversation_uuid: str, on_screen: Conversation | None) -> str:
    """The item of a chat active again, taken from where it was to the top of Today; the
    whole list when Today had no other chat (the page has no Today group to put it in)."""
    conversation = selectors.conversation_get_for_user_or_none(user, conversation_uuid)
    if conversation is None or conversation.archived:
        return ""
    if not selectors.conversation_today_has_another(user, conversation):
        return sidebar_list_html(user, on_screen)
    item = render_to_string(
        "conversations/_sidebar_item.html", {"item": conversation, "conversation": on_screen}
    )
    # The old item goes first: the new one takes its id.
    return (
        f'<li id="sidebar-item-{conversation.uuid}" hx-swap-oob="delete"></li>'
        f'<ul hx-swap-oob="afterbegin:{TODAY_ITEMS}">{item}</ul>'
    )


def controls_html(user: User, conversation_uuid: str) -> str:
    """The chat's header model switch, composer switches and context gauge, as they are now
    (switched in another tab)."""
    conversation = selectors.conversation_get_for_user_or_none(user, conversation_uuid)
    if conversation is None:
        return ""
    context = {
        "conversation": conversation,
        "chat_models": catalogue.chat_models_available(),
        "oob": True,
    }
    return (
        render_to_string("conversations/_model_switch.html", context)
        + render_to_string("conversations/_composer_switches.html", context)
        + pages.gauge_html(conversation, oob=True)
    )


def summary_change_html(conversation: Conversation, summary_id: int | None) -> str:
    """The open chat's summary divider, moved to after the last message the new summary
    covers (or shown being written again: `summary_id` None), and the header's gauge."""
    if summary_id is None:
        context = {"conversation": conversation, "regenerating": True}
        divider: str = render_to_string("conversations/_summary_divider.html", context)
    else:
        divider = _divider_moved_html(conversation, summary_id)
    return divider + pages.gauge_html(conversation, oob=True)


def _divider_moved_html(conversation: Conversation, summary_id: int) -> str:
    placement = summary_placement_on_thread(conversation, summary_id)
    if placement.summary is None:
        return ""
    context = {
        "conversation": conversation,
        "summary": placement.summary,
        "summary_html": render_markdown(placement.summary.text),
    }
    divider = render_to_string("conversations/_summary_divider.html", context)
    # The old divider (or "regenerating") goes first: the new one takes its id.
    return (
        '<div id="summary-divider" hx-swap-oob="delete"></div>'
        f'<div hx-swap-oob="afterend:#m-{placement.after_uuid}">{divider}</div>'
    )
