"""What model output must never carry to a page, read as a browser reads HTML."""

import re
from html.parser import HTMLParser

FORBIDDEN_TAGS = {"script", "img", "iframe", "svg", "style", "form", "input", "base", "meta"}
BAD_URL = re.compile(r"\s*(javascript|data|vbscript):", re.I)


class _Risky(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag in FORBIDDEN_TAGS:
            self.found.append(tag)
        for name, value in attrs:
            if name.startswith(("on", "hx-", "data-hx-", "ws-")) or name in {"id", "style", "src"}:
                self.found.append((tag, name))
            if name == "href" and BAD_URL.match(value or ""):
                self.found.append((tag, name, value))


def risky_markup(html: str) -> list:
    """Tags and attributes in `html` that could run code, make htmx act or fetch a URL."""
    return _Risky(html).found
