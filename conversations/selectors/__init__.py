"""Every read in chatsite. Ownership is checked here, once.

One module a subject: `conversations` (what a user owns), `threads` (messages and the thread
on screen), `message_reads` (messages with everything their UI shows resolved), `export`
(reads for export and the REST API), `imports` (what was imported before) and
`provider_health` (each model's error rate and first-token times, for the admin's health
page and its banner); the provider catalogue's reads are in `providers/catalogue.py`.
Callers import the package and use the names re-exported below
(`selectors.thread_messages(...)`), so where a read lives is this package's own business.
"""

from conversations.selectors.conversations import (
    DATE_GROUPS,
    ConversationGroup,
    attachment_get_for_user,
    attachments_unsent_for_user,
    chat_model_last_used_id,
    conversation_for_send,
    conversation_fresh,
    conversation_get_for_user_or_404,
    conversation_get_for_user_or_none,
    conversation_groups,
    conversation_list_archived_for_user,
    conversation_list_for_user,
    conversation_today_has_another,
    persona_get_for_user,
    persona_list_for_user,
)
from conversations.selectors.export import (
    conversation_images,
    conversation_messages,
    conversation_search_for_user,
    conversation_summaries,
    conversation_thread_ids,
    conversations_for_export,
)
from conversations.selectors.imports import (
    conversation_tree_for_merge,
    import_job_get_for_user_or_404,
    import_job_list_for_user,
    imported_conversation_ids,
    imported_source_ids,
)
from conversations.selectors.message_reads import MessageRead, read_message, read_messages
from conversations.selectors.provider_health import (
    ModelHealth,
    Unhealthy,
    provider_health_banner,
    provider_health_report,
)
from conversations.selectors.sessions import session_user_id
from conversations.selectors.threads import (
    NO_SIBLINGS,
    PAGE_SIZE,
    THREAD_BATCH,
    Siblings,
    attach_images,
    branch_leaf_of,
    conversation_in_flight_reply,
    message_by_idempotency_key,
    message_get_for_user_or_404,
    message_get_in_conversation,
    message_images,
    message_in_conversation_or_none,
    message_uuid,
    messages_by_ids,
    newest_message_id,
    provider_failures,
    reply_is_stale,
    siblings_of,
    thread_backwards,
    thread_leaf,
    thread_messages,
    thread_messages_after,
    thread_path_ids,
)
