"""How far the token counts are off: each model's counted prompt against what its provider
reported for the same requests, over its recent replies (shown in the model admin)."""

from django.db.models import FloatField, IntegerField, QuerySet
from django.db.models.expressions import RawSQL

from conversations.models import ChatModel, Message, UsageKind, UsageRecord

RECENT_REPLIES = 200

# The model's last replies whose request was counted and whose usage the provider reported:
# (counted - reported) / reported for each.
_ERRORS = f"""
    SELECT ((m.context ->> 'estimated_tokens')::float - u.prompt_tokens) / u.prompt_tokens AS e
    FROM {Message._meta.db_table} AS m
    JOIN {UsageRecord._meta.db_table} AS u ON u.message_id = m.id
    WHERE m.chat_model_id = {ChatModel._meta.db_table}.id
      AND u.kind = '{UsageKind.CHAT.value}' AND u.reported AND NOT u.retried
      AND u.prompt_tokens > 0 AND m.context ? 'estimated_tokens'
    ORDER BY m.id DESC
    LIMIT {RECENT_REPLIES}
"""


def with_count_error(models: QuerySet[ChatModel]) -> QuerySet[ChatModel]:
    """Annotate `count_error` (the signed mean of (counted - reported) / reported, None
    without any reported reply), `count_error_abs` (its mean size) and `count_replies`."""
    return models.annotate(
        count_error=RawSQL(f"SELECT avg(e) FROM ({_ERRORS}) AS errors", [], FloatField()),
        count_error_abs=RawSQL(f"SELECT avg(abs(e)) FROM ({_ERRORS}) AS errors", [], FloatField()),
        count_replies=RawSQL(f"SELECT count(*) FROM ({_ERRORS}) AS errors", [], IntegerField()),
    )
