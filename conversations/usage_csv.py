"""Usage statements as CSV, written a row at a time for a streamed response.

Text cells that a spreadsheet would read as a formula (starting with =, +, -, @, a tab or
a carriage return) are prefixed with a quote: a username or model name like
`=HYPERLINK(...)` must arrive as text, not run (OWASP's CSV injection advice).
"""

import csv
import io
from collections.abc import Generator, Iterable
from datetime import datetime

from conversations.usage.statements import StatementRow

HEADER = (
    "line",
    "month",
    "user",
    "provider",
    "model",
    "kind",
    "currency",
    "calls",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost",
)
# Lines per piece of the streamed body: each piece is one hop to a worker thread.
LINES_PER_BLOCK = 200
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def statement_csv(
    start: datetime, rows: Iterable[StatementRow], totals: Iterable[StatementRow]
) -> Generator[str, None, None]:
    """The header, a `usage` line per row, then a `total` line per currency."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    month = start.strftime("%Y-%m")

    def line(cells: Iterable[object]) -> str:
        writer.writerow(cells)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    block = [line(HEADER)]
    for row in rows:
        block.append(line(_cells("usage", month, row)))
        if len(block) >= LINES_PER_BLOCK:
            yield "".join(block)
            block = []
    block.extend(line(_cells("total", month, total)) for total in totals)
    yield "".join(block)


def _cells(kind_of_line: str, month: str, row: StatementRow) -> list[object]:
    texts = [row.username, row.provider, row.model, row.kind]
    return [
        kind_of_line,
        month,
        *(safe_cell(text) for text in texts),
        row.currency,
        row.calls,
        row.prompt,
        row.cached,
        row.completion,
        row.reasoning,
        format(row.cost, "f"),
    ]
