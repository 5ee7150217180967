"""Klaviyo's answers turned into row states and readable samples (no I/O here)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.input.batching import Batch
from klaviyo_tui.klaviyo import ImportErrorItem

#: Identifiers tried in order to tie an import error to its row, each at the top of
#: `original_payload` and then under its `attributes` (Klaviyo echoes either shape).
MATCH_FIELDS = ("email", "phone_number", "external_id")
_ROW_PREFIX = re.compile(r"^/data/attributes/profiles/data/\d+")


@dataclass(frozen=True, slots=True)
class Match:
    """One import error and the batch position it names (None: it names no row of the batch,
    or a row an earlier error named already), with the identifier that matched."""

    error: ImportErrorItem
    position: int | None
    value: str = ""


def match_import_errors(
    batch: Batch,
    errors: Sequence[ImportErrorItem],
    *,
    identifiers: Mapping[str, Sequence[str | None]] | None = None,
) -> list[Match]:
    """Tie each import error to a position of `batch` through its `original_payload`.

    Tried in order: `email`, `attributes.email`, then `phone_number` and `external_id` (same
    nesting). Emails come from the batch; phones and external ids from `identifiers` (field ->
    one value per row) or, when the batch still has its body, from its payloads.
    """
    index = _RowIndex(batch, identifiers)
    seen: set[int] = set()
    matches: list[Match] = []
    for error in errors:
        found = index.find(error.original_payload or {}, seen)
        if found is None:
            matches.append(Match(error, None))
            continue
        seen.add(found[0])
        matches.append(Match(error, found[0], found[1]))
    return matches


def error_reject(batch: Batch, match: Match, note: str = "") -> Reject:
    """The rejected row an itemised import error names, with Klaviyo's words as the reason."""
    assert match.position is not None
    error = match.error
    detail = error.detail or error.title or "import error"
    return Reject(
        row=batch.rows[match.position],
        segment=batch.segments[match.position],
        column=field_from_pointer(error.pointer),
        value=match.value,
        reason=f"Klaviyo: {detail}{note}",
        state=RowState.REJECTED,
        email=batch.email_at(match.position),
    )


def unitemised_rejects(count: int) -> list[Reject]:
    """Failures Klaviyo counted but did not itemise are still rejected rows: say so honestly."""
    return [
        Reject(
            row=0,
            segment="",
            column="",
            value="",
            reason="Klaviyo: counted as failed without an itemised import error",
            state=RowState.REJECTED,
        )
        for _ in range(max(0, count))
    ]


def map_import_errors(
    batch: Batch,
    errors: Sequence[ImportErrorItem],
    failed: int,
    *,
    identifiers: Mapping[str, Sequence[str | None]] | None = None,
) -> list[Reject]:
    """Every failed row as a Reject: the itemised ones tied to their source rows (see
    `match_import_errors`), the rest of `failed` as unitemised failures. An error that matches
    no row, or a row already matched, is counted among the unitemised failures."""
    rejects = [
        error_reject(batch, m)
        for m in match_import_errors(batch, errors, identifiers=identifiers)
        if m.position is not None
    ]
    return rejects + unitemised_rejects(failed - len(rejects))


def _key(field: str, value: object) -> str | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if field == "email":
        text = text.lower()
    return text or None


class _RowIndex:
    """Row positions by identifier, built per field on first use (phones parse the payloads)."""

    def __init__(
        self, batch: Batch, identifiers: Mapping[str, Sequence[str | None]] | None
    ) -> None:
        self.batch = batch
        self.identifiers = dict(identifiers or {})
        self.by_field: dict[str, dict[str, list[int]]] = {}

    def _values(self, field: str) -> Sequence[object]:
        if field in self.identifiers:
            return self.identifiers[field]
        if field == "email":
            return self.batch.emails
        if not self.batch.body:  # a receipt: the payloads are gone
            return ()
        values: list[object] = []
        for payload in self.batch.payloads:
            try:
                attrs = orjson.loads(payload).get("attributes") or {}
            except (orjson.JSONDecodeError, AttributeError):
                attrs = {}
            values.append(attrs.get(field) if isinstance(attrs, dict) else None)
        return values

    def _lookup(self, field: str) -> dict[str, list[int]]:
        table = self.by_field.get(field)
        if table is None:
            table = {}
            for row, value in enumerate(self._values(field)):
                key = _key(field, value)
                if key is not None:
                    table.setdefault(key, []).append(row)
            self.by_field[field] = table
        return table

    def find(self, payload: dict[str, Any], seen: set[int]) -> tuple[int, str] | None:
        """(row position, identifier) from the first identifier that names rows of the batch;
        None when none does, or when its rows are all matched already (a repeated error)."""
        attrs = payload.get("attributes")
        nested = attrs if isinstance(attrs, dict) else {}
        for field in MATCH_FIELDS:
            for source in (payload, nested):
                key = _key(field, source.get(field))
                rows = self._lookup(field).get(key, ()) if key is not None else ()
                if key is not None and rows:
                    free = [row for row in rows if row not in seen]
                    return (free[0], key) if free else None
        return None


def field_from_pointer(pointer: str | None) -> str:
    if not pointer:
        return ""
    return pointer.rstrip("/").rsplit("/", 1)[-1]


def pointer_path(pointer: str | None) -> str:
    """The attribute path an import error points at: `phone_number`, `location/zip`; "" for
    the whole profile or no pointer. Pointers look like `/data/attributes/phone_number` (or,
    in a bulk request's 400, `/data/attributes/profiles/data/3/attributes/phone_number`)."""
    text = _ROW_PREFIX.sub("", (pointer or "").strip().rstrip("/"))
    for head in ("/data/attributes/", "/attributes/"):
        if text.startswith(head):
            return text[len(head) :]
    if text in ("", "/data", "/data/attributes", "/attributes"):
        return ""
    return text.rsplit("/", 1)[-1]


def first_profile(body: bytes) -> bytes | None:
    try:
        data = orjson.loads(body)
        return orjson.dumps(data["data"]["attributes"]["profiles"]["data"][0])
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None


def masked(payload: bytes) -> object:
    """A sample profile with every value masked: shows the shape, never the data."""

    def mask(value: object) -> object:
        if isinstance(value, dict):
            return {k: (v if k == "type" else mask(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        if isinstance(value, str):
            if "@" in value:
                local, _, domain = value.partition("@")
                return f"{local[:1]}***@{domain[:1]}***"
            return value[:1] + "***" if value else value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return 0
        return value

    return mask(orjson.loads(payload))
