"""Names shared by a reply's run, its fan-out and the consumer.

A channel-layer event's `type` maps to the consumer handler of the same name with dots as
underscores (`reply.update` -> `reply_update`).
"""

from uuid import UUID

# Every process running generators listens here for stops aimed at replies it owns.
GENERATORS_GROUP = "chatsite.generators"

REPLY_UPDATE = "reply.update"  # text so far changed, or the reply finished
MESSAGES_ADDED = "messages.added"  # new messages joined the thread
REPLY_CANCEL = "reply.cancel"  # a stop, for whichever process owns the reply


def conversation_group(conversation_uuid: UUID | str) -> str:
    return f"conversation_{conversation_uuid}"
