"""Every write and state change in chatsite, one module per area.

Callers use `services.<name>`; the submodules keep each area small.
"""

from conversations.services.accounts import password_change, user_signup
from conversations.services.attachments import attachment_upload
from conversations.services.branches import (
    conversation_open_message,
    conversation_switch_branch,
    message_edit,
)
from conversations.services.catalogue import (
    catalogue_add_discovered,
    catalogue_sync_presets,
    provider_remember_stream_usage,
)
from conversations.services.continuations import reply_continuable, reply_continue
from conversations.services.conversations import (
    GenerationSettings,
    conversation_create,
    conversation_discard_unused,
    conversation_set_switches,
    conversation_switch_model,
    conversation_update_settings,
    persona_save,
)
from conversations.services.imports import (
    ImportFailure,
    ImportRejected,
    ImportResult,
    conversations_import,
)
from conversations.services.imports.import_jobs import (
    import_job_create,
    import_job_dir,
    import_job_run,
    import_job_wanted,
    import_jobs_fail_stale,
)
from conversations.services.ledger import (
    CallOutcome,
    embedding_usage_record_create,
    usage_cost,
    usage_record_create,
    usage_records_for_retries,
)
from conversations.services.partials import Partial, replies_save_partial
from conversations.services.pricing import usage_reprice
from conversations.services.provider_health import (
    provider_health_check,
    provider_health_check_all,
    provider_incident_email,
)
from conversations.services.recall import (
    conversation_index,
    conversation_recall_schedule,
    message_index,
    messages_index,
    messages_to_index,
    pending_index,
    recall_query_usage_record,
    recall_schedule,
)
from conversations.services.replies import (
    SWEPT,
    SentMessage,
    message_send,
    reply_cancel_orphan,
    reply_finish,
    reply_interrupt_orphan,
    reply_interrupt_stale,
    reply_retry,
    reply_start,
)
from conversations.services.sidebar import (
    conversation_archive,
    conversation_delete,
    conversation_rename,
    conversation_unarchive,
)
from conversations.services.summaries import (
    chat_model_calibrate,
    summary_create,
    summary_regenerate,
    summary_schedule,
    summary_schedule_if_due,
)
from conversations.services.titles import title_generate, title_schedule_if_due
