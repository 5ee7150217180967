"""Sending a row again without the field Klaviyo refused, instead of losing the customer.

Klaviyo refuses some values that are fine locally: a valid phone number outside the account's SMS
regions (a 400 at the row's `phone_number`), or an identifier that already belongs to another
profile (an import error such as `duplicate_profile` at `phone_number` or `external_id`). The
customer's email is what puts them in the list, so the row is sent again without that field and
ends "imported with warnings", the field and Klaviyo's reason in the rejects file. Only a refusal
of the email (the matching key) or of the whole profile rejects the row, as does the export's
`on_invalid_field = "reject_row"`.

Pure functions on payload bytes and batches; the tracker (jobs.py) decides when to call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.input.batching import Batch, BatchPacker
from klaviyo_tui.run.options import DROP_FIELD, REJECT_ROW

__all__ = ["DROP_FIELD", "REJECT_ROW", "Fix", "from_original", "rebatch", "removable"]


@dataclass(frozen=True, slots=True)
class Fix:
    """A field removed from a row so Klaviyo would take the rest: its value and Klaviyo's words."""

    field: str  # attribute path: phone_number, location/zip, properties/tier
    value: str
    reason: str


def removable(path: str, policy: str) -> bool:
    """Whether a refusal at this attribute path is answered by resending without it."""
    if policy == REJECT_ROW or not path:
        return False
    return path.split("/", 1)[0] != "email"  # the email is the key that puts them in the list


def _shown(value: object) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _without(attributes: dict[str, Any], path: str) -> object:
    """Remove `path` from `attributes` (in place); the value removed, or KeyError."""
    parts = path.split("/")
    parents: list[dict[str, Any]] = []
    node: Any = attributes
    for part in parts[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            raise KeyError(path)
        parents.append(node)
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise KeyError(path)
    value = node.pop(parts[-1])
    for parent, part in zip(reversed(parents), reversed(parts[:-1]), strict=True):
        if parent[part]:
            break
        del parent[part]  # an emptied `location` or `properties` goes too
    return value


def strip_field(payload: bytes, path: str) -> tuple[bytes, str] | None:
    """A serialized profile resource without the attribute at `path`, and the value removed;
    None when the profile does not have it (nothing left to remove)."""
    resource = orjson.loads(payload)
    attributes = resource.get("attributes") if isinstance(resource, dict) else None
    if not isinstance(attributes, dict):
        return None
    try:
        value = _without(attributes, path)
    except KeyError:
        return None
    return orjson.dumps(resource), _shown(value)


def from_original(original: dict[str, Any] | None, path: str) -> tuple[bytes, str] | None:
    """A profile resource built from an import error's `original_payload` (the row as sent,
    as attributes or as the whole resource) without `path`; None when that cannot be done."""
    if not isinstance(original, dict) or not original:
        return None
    nested = original.get("attributes")
    if isinstance(nested, dict):
        resource = dict(original)
        resource["type"] = "profile"
    else:
        resource = {"type": "profile", "attributes": original}
    return strip_field(orjson.dumps(resource), path)


def rebatch(
    number: int,
    list_id: str,
    payloads: Sequence[bytes],
    rows: Sequence[int],
    emails: Sequence[str],
    segments: Sequence[str],
) -> list[Batch]:
    """Pack payloads for a resend into batches that keep the journal batch's `number` (more
    than one only if they no longer fit one request)."""
    packer = BatchPacker(list_id)
    out: list[Batch] = []
    start = 0
    while start < len(payloads):
        end = start
        while end < len(payloads) and segments[end] == segments[start]:
            end += 1
        out += packer.add_arrays(
            pa.array(payloads[start:end], pa.binary()),
            np.asarray(rows[start:end], np.int64),
            pa.array(emails[start:end], pa.string()),
            segments[start],
        )
        start = end
    last = packer.flush()
    if last is not None:
        out.append(last)
    for batch in out:
        batch.number = number
    return out


def warning_reject(row: int, segment: str, fixes: Sequence[Fix]) -> Reject:
    """The rejects-file line of a row imported without the fields Klaviyo refused."""
    names = ", ".join(dict.fromkeys(f.field for f in fixes))
    reasons = "; ".join(dict.fromkeys(f.reason for f in fixes))
    return Reject(
        row=row,
        segment=segment,
        column=names,
        value="; ".join(f.value for f in fixes),
        reason=f"Klaviyo: {reasons} (imported without {names})",
        state=RowState.IMPORTED_WITH_WARNINGS,
    )
