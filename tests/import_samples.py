"""The import samples (tests/data/imports/SOURCES.md) and helpers the import tests share."""

import json
from pathlib import Path

from conversations import services

SAMPLES = Path(__file__).parent / "data" / "imports"
CHATGPT = SAMPLES / "chatgpt_conversations_sample.json"
CHATGPT_MODERN = SAMPLES / "chatgpt_conversations_modern_fixture.json"
CLAUDE = SAMPLES / "claude_export_sample.json"
OPEN_WEBUI = SAMPLES / "open_webui_export_sample.json"
OPEN_WEBUI_V2 = SAMPLES / "open_webui_export_sample_v2_output_items.json"


def load(path: Path):
    return json.loads(path.read_text())


def run_import(user, data, **kwargs):
    """Import `data` (bytes, text, or a JSON value) for `user`."""
    if not isinstance(data, bytes | str):
        data = json.dumps(data)
    return services.conversations_import(owner=user, data=data, **kwargs)


def texts(messages) -> list[str]:
    return [m.content for m in messages]
