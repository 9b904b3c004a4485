"""Messages with everything their UI shows resolved: cost, images, place among versions.

The presenters turn these into HTML without a query of their own; every read a message's
piece of UI needs happens here, batched for a whole page.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from conversations import usage
from conversations.models import NO_SIBLINGS, Message, MessageStatus, Role, Siblings
from conversations.selectors.threads import attach_images, message_images, siblings_of


@dataclass(frozen=True)
class MessageRead:
    message: Message
    # What this reply's upstream calls cost, in `currency` (None: nothing recorded).
    cost: Decimal | None
    currency: str
    # Uuids of the images a user message carries.
    image_uuids: tuple[str, ...]
    # Its place among the other versions of its turn (edits, regenerations).
    siblings: Siblings


def read_messages(messages: Sequence[Message]) -> list[MessageRead]:
    """One query each for images, costs and places, for the whole list; none for what the
    caller already knows (the sender's `siblings`, reply_finish's `recorded_cost`, images
    loaded by the thread selectors)."""
    unloaded = [m for m in messages if not hasattr(m, "loaded_images")]
    if unloaded:
        attach_images(unloaded)
    costs = usage.cost_by_message(
        [m.id for m in messages if _may_have_cost(m) and not hasattr(m, "recorded_cost")]
    )
    for message in messages:
        if recorded := getattr(message, "recorded_cost", None):
            costs[message.id] = recorded
    unplaced = [m for m in messages if getattr(m, "siblings", None) is None and m.pk is not None]
    places = siblings_of(unplaced)
    for message in unplaced:
        message.siblings = places[message.id]
    return [_read(message, costs) for message in messages]


def read_message(message: Message) -> MessageRead:
    return read_messages([message])[0]


def _may_have_cost(message: Message) -> bool:
    """Only finished replies have usage records: a fresh send asks for nothing."""
    return message.role == Role.ASSISTANT and message.status in MessageStatus.FINAL


def _read(message: Message, costs: dict[int, tuple[Decimal, str]]) -> MessageRead:
    cost, currency = costs.get(message.id, (None, ""))
    return MessageRead(
        message=message,
        cost=cost,
        currency=currency,
        image_uuids=tuple(str(image.uuid) for image in message_images(message)),
        siblings=getattr(message, "siblings", None) or NO_SIBLINGS,
    )
