"""Usage statements as CSV, written a row at a time for a streamed response.

Text cells that a spreadsheet would read as a formula (starting with =, +, -, @, a tab or
a carriage return) are prefixed with a quote: a username or model name like
`=HYPERLINK(...)` must arrive as text, not run (OWASP's CSV injection advice).
"""

import csv
import io
from collections.abc import Generator, Iterable
from datetime import datetime

from django.contrib.auth.models import User
from django.http import HttpRequest, StreamingHttpResponse

from chatsite.http import streamed_body
from conversations import usage
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


def month_asked(text: str) -> datetime | None:
    """`2026-03` as that month's start, this month for an empty text, None for anything else."""
    return usage.month_from_text(text) if text else usage.month_start()


def statement_download(
    request: HttpRequest, start: datetime, user: User | None
) -> StreamingHttpResponse:
    """A month's statement as a CSV download: one user's, or everyone's when `user` is None."""
    blocks = statement_csv(
        start, usage.statement_rows(start, user), usage.statement_totals(start, user)
    )
    response = StreamingHttpResponse(
        streamed_body(request, blocks), content_type="text/csv; charset=utf-8"
    )
    who = f"-{user.get_username()}" if user is not None else "-all"
    response["Content-Disposition"] = (
        f'attachment; filename="chatsite-usage-{start:%Y-%m}{who}.csv"'
    )
    return response
