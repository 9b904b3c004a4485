import django.db.models.deletion
from django.db import migrations, models

# Full-text search over message text. The
# 'simple' configuration neither stems nor drops stop words, so English and pinyin match
# as typed; Chinese, which has no spaces to split on, is matched with ILIKE instead.
SEARCH_INDEX = (
    "CREATE INDEX IF NOT EXISTS message_content_fts ON conversations_message "
    "USING gin (to_tsvector('simple', content))"
)
DROP_SEARCH_INDEX = "DROP INDEX IF EXISTS message_content_fts"


def create_search_index(apps, schema_editor):
    schema_editor.execute(SEARCH_INDEX)


def drop_search_index(apps, schema_editor):
    schema_editor.execute(DROP_SEARCH_INDEX)


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0005_attachments"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="current_leaf",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="conversations.message",
            ),
        ),
        migrations.RunPython(create_search_index, drop_search_index),
    ]
