"""Versions of a turn: editing a user message and paging between versions.

A conversation is a tree. Editing a message adds a sibling of it (with a new reply) and a
regeneration adds a sibling reply (services.reply_retry); nothing is ever overwritten, so
every earlier version stays one click away. `Conversation.current_leaf` marks the branch on
screen: the next message continues it and the next request's context is its path.
"""

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from conversations import selectors
from conversations.errors import ReplyInFlight, ValidationFailed
from conversations.models import Attachment, Conversation, Message, Role
from conversations.services.fits import require_fits_window
from conversations.services.replies import (
    SentMessage,
    pending_reply_create,
    touch_conversation,
    validated_content,
)
from conversations.services.requirements import (
    require_budget,
    require_model,
    require_send_allowance,
)


def _copy_images(source: Message, target: Message) -> None:
    """The edited version keeps the original's images (the stored files are shared)."""
    images = [
        Attachment(
            owner_id=image.owner_id,
            message=target,
            file=image.file.name,
            content_type=image.content_type,
            size=image.size,
            name=image.name,
            width=image.width,
            height=image.height,
        )
        for image in source.attachments.all()
    ]
    Attachment.objects.bulk_create(images)


def message_edit(*, message: Message, content: str) -> SentMessage:
    """Send a new version of a user message; the old one and its replies stay a sibling
    branch. The new version is answered, and the branch on screen moves to that answer."""
    if message.role != Role.USER:
        raise ValidationFailed(_("Only your own messages can be edited."))
    conversation = message.conversation
    has_images = message.attachments.exists()
    content = validated_content(content, has_images=has_images)
    require_model(conversation)
    require_fits_window(conversation, content)
    require_budget(conversation)
    require_send_allowance(conversation)
    try:
        with transaction.atomic():
            edited = Message.objects.create(
                conversation=conversation,
                parent_id=message.parent_id,
                role=Role.USER,
                content=content,
            )
            if has_images:
                _copy_images(message, edited)
            reply = pending_reply_create(conversation=conversation, parent=edited)
            touch_conversation(conversation, leaf=reply, branched=True)
    except IntegrityError:
        raise ReplyInFlight() from None
    reply.siblings = selectors.NO_SIBLINGS
    return SentMessage(edited, reply, created=True)


def conversation_switch_branch(*, conversation: Conversation, message: Message) -> Message:
    """Show the branch through `message` (a sibling picked in the "2 / 3" pager, or a search
    hit on an older branch); returns the leaf the branch now ends at."""
    if message.conversation_id != conversation.pk:
        raise ValidationFailed(_("That message is not in this conversation."))
    if selectors.conversation_in_flight_reply(conversation) is not None:
        raise ReplyInFlight(
            _("A reply is still being written. Stop it or wait for it before switching versions.")
        )
    leaf = selectors.branch_leaf_of(message)
    # Viewing another version is not activity: the sidebar order stays as it is.
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=leaf)
    conversation.current_leaf = leaf
    return leaf


def conversation_open_message(*, conversation: Conversation, message: Message) -> None:
    """Bring the branch through `message` on screen unless it is there already (opening a
    search hit or a link to a message on an older version)."""
    if message.conversation_id != conversation.pk:
        raise ValidationFailed(_("That message is not in this conversation."))
    if message.id not in selectors.thread_path_ids(conversation):
        conversation_switch_branch(conversation=conversation, message=message)
