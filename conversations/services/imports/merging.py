"""A newer export of a conversation imported before: its new messages (a later turn, a
regenerated answer, an edited question) are added to the conversation already here, under
the messages they follow, and nothing is written twice.

A message of the export is the one already here when it hangs from the same message (or
both start the conversation) and has the same role and text, and the same time when the
export gives one (two identical questions asked as two versions of a turn stay two). Every
message matched, the rest are new: written as a new branch where they fork off, so every
version of every turn is kept on both sides.
"""

from dataclasses import dataclass, field

from conversations import selectors
from conversations.services.imports.plans import ConversationPlan, MessagePlan


@dataclass
class Merge:
    """What a newer export adds to a conversation imported before."""

    conversation_id: int
    plan: ConversationPlan
    # The export's messages already here: their key in the plan -> the message's id.
    known: dict[str, int] = field(default_factory=dict)
    new: list[MessagePlan] = field(default_factory=list)  # in the plan's order
    # Some new message is another version of a turn already here (or a second start).
    forks: bool = False


def merge_plan(conversation_id: int, plan: ConversationPlan) -> Merge:
    """The export's messages matched against the conversation's; the others are new."""
    children: dict[int | None, list[tuple]] = {}
    for row in selectors.conversation_tree_for_merge(conversation_id):
        children.setdefault(row[1], []).append(row)
    merge, taken = Merge(conversation_id, plan), set[int]()
    for message in plan.messages:
        if message.parent is not None and message.parent not in merge.known:
            merge.new.append(message)  # under a new message: new itself
            continue
        parent_id = merge.known[message.parent] if message.parent is not None else None
        found = _match(message, children.get(parent_id, []), taken)
        if found is None:
            merge.new.append(message)
            merge.forks = merge.forks or bool(children.get(parent_id))
        else:
            merge.known[message.key] = found
            taken.add(found)
    return merge


def _match(message: MessagePlan, candidates: list[tuple], taken: set[int]) -> int | None:
    role, content = message.fields.get("role"), message.fields.get("content", "")
    for pk, _, their_role, their_content, created_at in candidates:
        if pk in taken or their_role != role or their_content != content:
            continue
        if message.created_at is None or message.created_at == created_at:
            return pk
    return None
