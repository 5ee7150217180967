"""Query parameters: the JSON:API `filter` mini-language, page sizes and opaque cursors."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from .error_responses import invalid

Condition = tuple[str, str, Any]  # (operator, field, value)

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<punct>[(),\[\]])|(?P<bare>[^\s(),\[\]"']+))"""
)
_LOGICAL = {"and"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise invalid(f"Invalid filter near position {pos}.", parameter="filter")
        kind = m.lastgroup or "bare"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def fail(self, why: str) -> Exception:
        return invalid(f"Invalid filter: {why}.", parameter="filter")

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise self.fail(f"expected {value or 'more input'}")
        self.i += 1
        return tok

    def conditions(self) -> list[Condition]:
        out = self.call()
        while self.peek() == ("punct", ","):
            self.take(",")
            out += self.call()
        return out

    def call(self) -> list[Condition]:
        kind, name = self.take()
        if kind != "bare":
            raise self.fail("expected an operator such as equals or any")
        self.take("(")
        if name in _LOGICAL:
            out = self.conditions()
            self.take(")")
            return out
        fkind, fld = self.take()
        if fkind != "bare":
            raise self.fail("expected a field name")
        self.take(",")
        value = self.value()
        self.take(")")
        return [(name, fld, value)]

    def value(self) -> Any:
        tok = self.peek()
        if tok == ("punct", "["):
            self.take("[")
            items: list[Any] = []
            while self.peek() != ("punct", "]"):
                items.append(self.value())
                if self.peek() == ("punct", ","):
                    self.take(",")
            self.take("]")
            return items
        kind, text = self.take()
        if kind == "str":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "bare":
            return _bare(text)
        raise self.fail(f"unexpected {text!r}")


def _bare(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed
    except ValueError:
        pass
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise invalid(f"Invalid filter value {text!r}.", parameter="filter") from None


def parse_filter(text: str | None, allowed: Mapping[str, set[str]]) -> list[Condition]:
    """Parse `filter`; check each (field, operator) against what the spec allows here."""
    if text is None or not text.strip():
        return []
    parser = _Parser(text)
    conds = parser.conditions()
    if parser.peek() is not None:
        raise parser.fail("unexpected text after the expression")
    for op, fld, value in conds:
        if fld not in allowed:
            raise invalid(f"'{fld}' is not a valid field for this filter.", parameter="filter")
        if op not in allowed[fld]:
            raise invalid(f"'{op}' is not a valid operator for '{fld}'.", parameter="filter")
        if op == "any" and not isinstance(value, list):
            raise invalid(f"any({fld},…) needs a list value.", parameter="filter")
        if op != "any" and isinstance(value, list):
            raise invalid(f"{op}({fld},…) needs a single value.", parameter="filter")
    return conds


def page_size(params: Mapping[str, str], default: int, maximum: int) -> int:
    raw = params.get("page[size]")
    if raw is None:
        return default
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= maximum:
        raise invalid(
            f"page[size] must be an integer between 1 and {maximum}.", parameter="page[size]"
        )
    return size


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"sbx:{position}".encode()).decode().rstrip("=")


def decode_cursor(params: Mapping[str, str]) -> int:
    """The position a `page[cursor]` points at (0 when absent); 400 for a cursor we did not mint."""
    raw = params.get("page[cursor]")
    if raw is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        prefix, _, num = text.partition(":")
        if prefix != "sbx" or not num.isdigit():
            raise ValueError
        return int(num)
    except ValueError:
        raise invalid("Invalid page cursor.", parameter="page[cursor]") from None


def page_links(
    base_url: str, path: str, params: Mapping[str, str], next_position: int | None
) -> dict[str, str]:
    """`links` for a collection: absolute `self`, and `next` only when there is a next page."""
    query = {k: v for k, v in params.items() if k != "page[cursor]"}
    self_q = urlencode(dict(params)) if params else ""
    links = {"self": f"{base_url}{path}" + (f"?{self_q}" if self_q else "")}
    if next_position is not None:
        query["page[cursor]"] = encode_cursor(next_position)
        links["next"] = f"{base_url}{path}?{urlencode(query)}"
    return links
