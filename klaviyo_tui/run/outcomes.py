"""Klaviyo's answers turned into row states and readable samples (no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.input.batching import Batch
from klaviyo_tui.klaviyo import ImportErrorItem

#: Identifiers tried in order to tie an import error to its row, each at the top of
#: `original_payload` and then under its `attributes` (Klaviyo echoes either shape).
MATCH_FIELDS = ("email", "phone_number", "external_id")


def map_import_errors(
    batch: Batch,
    errors: Sequence[ImportErrorItem],
    failed: int,
    *,
    identifiers: Mapping[str, Sequence[str | None]] | None = None,
) -> list[Reject]:
    """Tie Klaviyo's import errors back to source rows through `original_payload`.

    Tried in order: `email`, `attributes.email`, then `phone_number` and `external_id` (same
    nesting). Emails come from the batch; phones and external ids from `identifiers` (field ->
    one value per row) or, when the batch still has its body, from its payloads. An error that
    matches no row, or a row already matched, is counted among the unitemised failures.
    """
    index = _RowIndex(batch, identifiers)
    emails = batch.emails if errors else []
    rejects: list[Reject] = []
    seen: set[int] = set()
    for error in errors:
        found = index.find(error.original_payload or {}, seen)
        if found is None:
            continue
        row, value = found
        seen.add(row)
        detail = error.detail or error.title or "import error"
        rejects.append(
            Reject(
                row=batch.rows[row],
                segment=batch.segments[row],
                column=field_from_pointer(error.pointer),
                value=value,
                reason=f"Klaviyo: {detail}",
                state=RowState.REJECTED,
                email=emails[row],
            )
        )
    # Failures Klaviyo counted but did not itemise are still rejected rows: say so honestly.
    for _ in range(max(0, failed - len(rejects))):
        rejects.append(
            Reject(
                row=0,
                segment="",
                column="",
                value="",
                reason="Klaviyo: counted as failed without an itemised import error",
                state=RowState.REJECTED,
            )
        )
    return rejects


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
