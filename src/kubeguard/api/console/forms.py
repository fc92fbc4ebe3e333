"""Reading the console's HTML forms: ``application/x-www-form-urlencoded`` only, and small.

Parsed with the standard library rather than ``python-multipart``: the console never uploads files, and a
bounded body keeps a hostile form from tying up memory.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request

MAX_FORM_BYTES = 64 * 1024


class Form:
    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self._fields.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self._fields.get(name, []))


async def read_form(request: Request) -> Form:
    """The submitted fields; an oversized or non-urlencoded body reads as an empty form (and fails CSRF)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return Form({})
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            return Form({})
    return Form(parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=200))
