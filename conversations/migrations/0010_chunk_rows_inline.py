"""Recall's chunk rows keep their vectors inline.

A chunk row holds its text, its generated tsvector and a vector (1.5 KB at 384 dimensions,
4-6 KB for the providers' sizes). Past PostgreSQL's 2 KB default the vector went to the TOAST
table, and ranking a conversation's chunks fetched every one back from there: the nearest
1,000 took 2.3 ms instead of 0.7. Rows may now grow to half a page (4 KB) before anything
is moved out, and then the text goes first: the vector is MAIN, out of line only as a last
resort. Rows written before this keep their layout until rewritten (`reindex_recall`).
"""

from django.db import migrations

CHUNK = "conversations_messagechunk"

KEEP_VECTORS_INLINE = f"""
ALTER TABLE {CHUNK} SET (toast_tuple_target = 4080);
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = '{CHUNK}'
               AND column_name = 'embedding' AND table_schema = current_schema()) THEN
        ALTER TABLE {CHUNK} ALTER COLUMN embedding SET STORAGE MAIN;
    END IF;
END $$;
"""

DEFAULT_LAYOUT = f"""
ALTER TABLE {CHUNK} RESET (toast_tuple_target);
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = '{CHUNK}'
               AND column_name = 'embedding' AND table_schema = current_schema()) THEN
        ALTER TABLE {CHUNK} ALTER COLUMN embedding SET STORAGE EXTERNAL;
    END IF;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0009_conversation_has_branches"),
    ]

    operations = [migrations.RunSQL(KEEP_VECTORS_INLINE, DEFAULT_LAYOUT)]
