"""Rows written by PostgreSQL's COPY, for the import's bulk writes: ids taken from the
table's sequence beforehand (so a message's parent, a conversation's branch on screen and
every timestamp are known before the first row is sent, and nothing is updated after the
insert), then every row streamed in one COPY. An INSERT ... VALUES of 500 rows, then an
UPDATE of the same rows to link their parents, cost several times more: the statements'
parameters converted one by one, and every row written twice, each of its indexes too.

Values are given by column attribute name (`parent_id`); a column not given takes the
model field's default, as `Model()` would give it. Triggers (the messages' search vector)
and deferred foreign-key checks run as for any insert.
"""

from collections.abc import Iterable, Iterator

from django.db import connection, models
from psycopg.types.json import Jsonb


def ids_reserve(model: type[models.Model], count: int) -> Iterator[int]:
    """`count` new ids of `model`'s table, ascending (a parent's before its children's)."""
    if not count:
        return iter(())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return iter(sorted(row[0] for row in cursor.fetchall()))


class Columns:
    """A model's columns in COPY order, each with how a row missing it is filled."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.names = [field.attname for field in self.fields]
        self.json = {field.attname for field in self.fields if isinstance(field, models.JSONField)}
        # Callable defaults (uuid4, list) are called per row; the others computed once.
        called = {field for field in self.fields if field.has_default() and callable(field.default)}
        self.called = {field.attname: field.default for field in called}
        self.constant = {
            field.attname: field.get_default() for field in self.fields if field not in called
        }

    def row(self, values: dict) -> tuple:
        row = dict(self.constant)
        for name, default in self.called.items():
            if name not in values:
                row[name] = default()
        row.update(values)
        for name in self.json:
            if row[name] is not None:
                row[name] = Jsonb(row[name])
        return tuple(row[name] for name in self.names)


def rows_copy(columns: Columns, rows: Iterable[dict]) -> None:
    """Every row of `rows` (values by attribute name) into the model's table, in one COPY."""
    table = connection.ops.quote_name(columns.model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(field.attname) for field in columns.fields)
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for values in rows:
            copy.write_row(columns.row(values))
