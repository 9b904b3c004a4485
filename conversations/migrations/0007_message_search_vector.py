"""Message text searched through a stored tsvector, so that streaming replies' saves are HOT.

A streaming reply's text is saved every STREAM_SAVE_INTERVAL. While `content` sat in an
index (the full-text expression index of 0006) and `heartbeat_at` in another (the in-flight
index), each of those saves wrote a new entry into every index of the table, ten of them,
and re-parsed the text into the GIN index: about 0.6 ms of Postgres per reply per save, and
the most expensive statement under load. Now the full-text index is on `search_vector`, a
column a trigger fills when a message settles (never while it is pending or streaming, when
it stays NULL), and heartbeat_at is in no index; with some room left on each page
(fillfactor), a partial save changes no indexed value and Postgres updates the row in place.
"""

from django.db import migrations

VECTOR_FUNCTION = """
CREATE OR REPLACE FUNCTION conversations_message_search_vector() RETURNS trigger AS $$
BEGIN
    IF NEW.status IN ('pending', 'streaming') THEN
        NEW.search_vector := NULL;
    ELSIF TG_OP = 'INSERT' OR NEW.content IS DISTINCT FROM OLD.content
            OR OLD.search_vector IS NULL THEN
        NEW.search_vector := to_tsvector('simple', NEW.content);
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""
FORWARD = [
    "ALTER TABLE conversations_message ADD COLUMN search_vector tsvector",
    VECTOR_FUNCTION,
    "CREATE TRIGGER message_search_vector BEFORE INSERT OR UPDATE OF content, status"
    " ON conversations_message FOR EACH ROW EXECUTE FUNCTION conversations_message_search_vector()",
    "UPDATE conversations_message SET search_vector = to_tsvector('simple', content)"
    " WHERE status NOT IN ('pending', 'streaming')",
    "DROP INDEX IF EXISTS message_content_fts",
    "CREATE INDEX message_search_vector ON conversations_message USING gin (search_vector)",
    # Room on each page for a reply's next version: an in-place (HOT) update needs it there.
    "ALTER TABLE conversations_message SET (fillfactor = 80)",
]
BACKWARD = [
    "ALTER TABLE conversations_message RESET (fillfactor)",
    "DROP INDEX IF EXISTS message_search_vector",
    "DROP TRIGGER IF EXISTS message_search_vector ON conversations_message",
    "DROP FUNCTION IF EXISTS conversations_message_search_vector()",
    "ALTER TABLE conversations_message DROP COLUMN IF EXISTS search_vector",
    "CREATE INDEX IF NOT EXISTS message_content_fts ON conversations_message"
    " USING gin (to_tsvector('simple', content))",
]


def _statements(statements):
    def run(apps, schema_editor):
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0006_current_leaf_and_search"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="message", name="message_in_flight"),
        migrations.RunPython(_statements(FORWARD), _statements(BACKWARD)),
    ]
