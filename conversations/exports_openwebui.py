"""Export in Open WebUI's format: the envelope its "Export all chats" writes and its
"Import chats" reads, every branch of the tree kept (`history.messages` with
`parentId`/`childrenIds`, `currentId` the branch on screen), reasoning where Open WebUI
keeps it (a collapsed `<details type="reasoning">` before the answer)."""

import html
import json
from collections.abc import Iterable, Iterator

from conversations import selectors
from conversations.models import Conversation, Message, MessageStatus, Role


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _openwebui_message(message: Message, children: list[str], *, seconds: int) -> dict:
    content = message.content
    if message.reasoning:
        # Where Open WebUI itself keeps a reply's reasoning, collapsed when shown.
        reasoning = "\n".join(f"> {line}" for line in message.reasoning.splitlines())
        content = (
            '<details type="reasoning" done="true"><summary>Reasoning</summary>\n'
            f"{html.escape(reasoning, quote=False)}\n</details>\n{content}"
        )
    document: dict = {
        "id": str(message.uuid),
        "parentId": str(message.parent_uuid) if message.parent_uuid else None,  # type: ignore[attr-defined]
        "childrenIds": children,
        "role": message.role,
        "content": content,
        "timestamp": seconds,
    }
    if message.role == Role.ASSISTANT:
        document.update(model=message.model_name, done=message.status in MessageStatus.FINAL)
        if message.prompt_tokens is not None or message.completion_tokens is not None:
            document["usage"] = {
                "prompt_tokens": message.prompt_tokens,
                "completion_tokens": message.completion_tokens,
            }
    return document


def _conversation_openwebui(conversation: Conversation) -> Iterator[str]:
    """One chat in the envelope Open WebUI's "Export all chats" writes. Its tree lists each
    message's children, so a conversation's messages are held while it is written."""
    messages = list(selectors.conversation_messages(conversation, with_models=False))
    children: dict[str | None, list[str]] = {}
    for message in messages:
        parent = message.parent_uuid  # type: ignore[attr-defined]
        children.setdefault(str(parent) if parent else None, []).append(str(message.uuid))
    tree = {
        str(m.uuid): _openwebui_message(
            m, children.get(str(m.uuid), []), seconds=int(m.created_at.timestamp())
        )
        for m in messages
    }
    on_screen = selectors.conversation_thread_ids(conversation)
    thread = [str(m.uuid) for m in messages if m.id in on_screen]
    chat = {
        "title": conversation.display_title,
        "models": [conversation.chat_model.name] if conversation.chat_model else [],
        "history": {"messages": tree, "currentId": thread[-1] if thread else None},
        "messages": [tree[key] for key in thread],
    }
    yield _dumps(
        {
            "id": str(conversation.uuid),
            "title": conversation.display_title,
            "chat": chat,
            "created_at": int(conversation.created_at.timestamp()),
            "updated_at": int(conversation.updated_at.timestamp()),
            "archived": conversation.archived,
        }
    )


def export_openwebui(conversations: Iterable[Conversation]) -> Iterator[str]:
    yield "["
    for index, conversation in enumerate(conversations):
        yield ("," if index else "") + "\n"
        yield from _conversation_openwebui(conversation)
    yield "\n]"
