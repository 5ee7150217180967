"""Klaviyo's answers turned into row states and readable samples (no I/O here)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.input.batching import Batch
from klaviyo_tui.klaviyo import ImportErrorItem


def map_import_errors(batch: Batch, errors: Sequence[ImportErrorItem], failed: int) -> list[Reject]:
    """Tie Klaviyo's import errors back to source rows through the email in original_payload."""
    by_email = {email: i for i, email in enumerate(batch.emails)}
    rejects: list[Reject] = []
    seen: set[int] = set()
    for error in errors:
        payload = error.original_payload or {}
        email = str(payload.get("email", "")).strip().lower()
        index = by_email.get(email)
        detail = error.detail or error.title or "import error"
        if index is not None and index not in seen:
            seen.add(index)
            rejects.append(
                Reject(
                    row=batch.rows[index],
                    segment=batch.segments[index],
                    column=field_from_pointer(error.pointer),
                    value=email,
                    reason=f"Klaviyo: {detail}",
                    state=RowState.REJECTED,
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
