"""A chat socket obeys the session it was opened with.

Every action on a socket re-reads that session (selectors.session_user_id), so a logout in
another tab, a password change or an admin's deactivation stops the next send before it
reaches a provider. And the sockets hear at once: each joins its user's group (user_events),
and when a user's sessions may have ended (a logout, a save of the password or of is_active)
the group is told to check, so a signed-out tab closes (4401) without waiting for its next
action.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_save

from conversations import user_events

# The socket's handler for it: ConversationConsumer.session_check.
SESSION_CHECK = "session.check"
# Saving only these leaves every session as it was (a login saves last_login).
HARMLESS_FIELDS = frozenset({"last_login"})


def sessions_changed(user_id: int, *, ended: str | None = None) -> None:
    """Tell the user's sockets to check their sessions; `ended` is a session known to be
    over (a logout's, flushed only after the signal)."""
    user_events.send(user_id, {"type": SESSION_CHECK, "ended": ended or ""})


def _on_logout(sender, request, user, **kwargs) -> None:
    if user is not None and user.pk is not None:
        sessions_changed(user.pk, ended=request.session.session_key)


def _on_user_saved(sender, instance, created: bool, update_fields=None, **kwargs) -> None:
    if created or (update_fields is not None and set(update_fields) <= HARMLESS_FIELDS):
        return
    user_id = instance.pk
    # After the commit: a socket that checks sooner would still find the old password.
    transaction.on_commit(lambda: sessions_changed(user_id))


def connect_signals() -> None:
    user_logged_out.connect(_on_logout, dispatch_uid="chatsite-socket-logout")
    post_save.connect(
        _on_user_saved, sender=get_user_model(), dispatch_uid="chatsite-socket-user-saved"
    )
