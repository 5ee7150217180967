"""The checked form of a filter: a few plain dataclasses, the only thing the evaluator accepts.

The parser turns SQL text into these nodes and refuses everything else, so what runs on the data
is decided by this file, not by the SQL parser's much larger vocabulary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from klaviyo_tui.errors import AppError, ExitCode

EXAMPLE = "country = 'US' AND orders > 3"
INPUT_ECHO_LIMIT = 200
"""Never more than this many characters of the user's filter in one message (it may be hostile)."""


class FilterError(AppError):
    """A segment filter that cannot be used; the message names the token or column at fault.

    `position` is the 0-based character offset of the fault in the filter text, when known, so
    the TUI can point at it.
    """

    title = "The filter is not valid"
    default_hint = f"Write the filter in SQL WHERE syntax, e.g. {EXAMPLE}."
    exit_code = ExitCode.INPUT

    def __init__(self, message: str, *, position: int | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.position = position


def clip(text: str, limit: int = 40) -> str:
    """User text made safe to show, at most `limit` characters: anything not printable as an
    escape (ESC as `\\x1b`, as everywhere else), so a message names the column exactly."""
    pieces = [
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in text[: limit + 1]
    ]
    if sum(map(len, pieces)) <= limit:
        return "".join(pieces)
    kept: list[str] = []
    room = limit - 1  # an escape is kept whole or not at all
    for piece in pieces:
        room -= len(piece)
        if room < 0:
            break
        kept.append(piece)
    return "".join(kept) + "…"


def quoted(text: str, limit: int = 40) -> str:
    """User text in single quotes for a message, clipped."""
    return f"'{clip(text, limit)}'"


def columns_text(columns: Sequence[str], limit: int = 30) -> str:
    """'Columns available: a, b.' with long lists and names shortened."""
    if not columns:
        return "No columns were read."
    names = ", ".join(clip(str(c), 40) for c in columns[:limit])
    more = f", … ({len(columns) - limit} more)" if len(columns) > limit else ""
    return f"Columns available: {names}{more}."


ValueKind = Literal["number", "text", "date", "timestamp", "bool"]
CompareOp = Literal["=", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class Value:
    """A literal from the filter. `date` compares by day, `timestamp` to the microsecond."""

    kind: ValueKind
    value: int | float | str | bool | dt.date | dt.datetime


@dataclass(frozen=True, slots=True)
class Const:
    value: bool


@dataclass(frozen=True, slots=True)
class Truth:
    """A bare column used as a condition (`NOT vip`): true/false/yes/no/1/0 cells."""

    column: str


@dataclass(frozen=True, slots=True)
class Compare:
    column: str
    op: CompareOp
    value: Value


@dataclass(frozen=True, slots=True)
class InList:
    column: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Between:
    column: str
    low: Value
    high: Value


@dataclass(frozen=True, slots=True)
class Like:
    column: str
    pattern: str
    ignore_case: bool


@dataclass(frozen=True, slots=True)
class IsNull:
    column: str


@dataclass(frozen=True, slots=True)
class IsBool:
    column: str
    value: bool


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


Node = Const | Truth | Compare | InList | Between | Like | IsNull | IsBool | Not | And | Or


def node_columns(node: Node) -> list[str]:
    """The columns a node reads, in order of first use."""
    if isinstance(node, Not):
        return node_columns(node.operand)
    if isinstance(node, And | Or):
        return list(dict.fromkeys([*node_columns(node.left), *node_columns(node.right)]))
    if isinstance(node, Const):
        return []
    return [node.column]


def to_timestamp(text: str) -> dt.datetime | None:
    """An ISO timestamp as naive UTC (a zone offset is applied), or None."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def number_literal(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)
