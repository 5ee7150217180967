"""The field policy: what a problem with one field other than email does to its row.

Email is the matching key: a missing or invalid email always makes the row `invalid`. Any other
field (a phone that is not a number, or not valid for the default region; an external_id over 255
characters; a latitude or longitude that is not a coordinate; a profile over 100 KB) follows the
export's `on_invalid_field`:

- `drop_field` (the default): the row is sent without that field. Once Klaviyo confirms it, its
  final state is `imported_with_warnings`, and the warnings file lists the field, its value and
  why (one line per dropped field), so a secondary field never costs a customer their place.
- `reject_row`: the row is not sent and is listed `invalid` with the reason (the first rule it
  breaks, as before).

A phone or external_id shared with another customer's email in the same export is always dropped
with a warning, whatever the policy (see input/identifiers.py): the field is not wrong, it is
ambiguous, and the customer still belongs in the list.

**Profiles over 100 KB** (Klaviyo's limit, read strictly). With `drop_field`, the largest fields
other than email are dropped, biggest first, until the profile fits; each is a warning naming its
source column. In practice that is one oversized custom property (a notes or JSON column), and
the customer reaches the list with everything else intact, which is what dropping a bad field is
for; dropping whole groups (all properties) would lose more than needed, and rejecting would cost
the customer their place for a field Klaviyo does not need to match them. With `reject_row` the
row is invalid, as before. This path runs per oversized row in Python: such rows are rare and
each is 100 KB of work anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.store.config import FIELD_POLICIES, Mapping

DROP_FIELD, REJECT_ROW = FIELD_POLICIES
SENT_WITHOUT = "sent without it"
_COORD_RE = r"^[+-]?[0-9]{1,3}(?:\.[0-9]+)?$"
_COORD_LIMITS = {"latitude": 90.0, "longitude": 180.0}
_SHOWN_VALUE = 200  # characters of an oversized value kept in the warnings file's value cell


@dataclass
class FieldIssue:
    """One kind of problem with one field, at some positions of the chunk."""

    field: str  # the Klaviyo field: "phone_number", "external_id", "location.latitude", ...
    column: str  # its source column
    positions: np.ndarray  # int64 positions in the chunk
    values: list[str]  # the value each position had
    reasons: list[str]  # why, per position
    shared: bool = False  # ambiguous, not wrong: dropped whatever the policy


def issue(
    field: str,
    column: str,
    arr: pa.Array,
    positions: Sequence[int] | np.ndarray,
    reasons: Sequence[str],
) -> FieldIssue:
    """A FieldIssue whose values are `arr`'s at `positions`."""
    where = np.asarray(positions, dtype=np.int64)
    values = arr.take(pa.array(where)).to_pylist() if len(where) else []
    return FieldIssue(field, column, where, [v or "" for v in values], list(reasons))


def coordinate_issue(key: str, column: str, arr: pa.Array) -> FieldIssue | None:
    """Latitude/longitude values that are not a decimal number within range."""
    limit = _COORD_LIMITS[key]
    shaped = pc.match_substring_regex(arr, _COORD_RE).fill_null(False)
    numbers = pc.cast(pc.if_else(shaped, arr, pa.scalar(None, pa.string())), pa.float64())
    fine = pc.less_equal(pc.abs(numbers), limit).fill_null(False)
    present = arr.is_valid().to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(present & ~fine.to_numpy(zero_copy_only=False))
    if not len(bad):
        return None
    reason = f"{key} is not a coordinate (a decimal number from -{limit:g} to {limit:g})"
    return issue(f"location.{key}", column, arr, bad, [reason] * len(bad))


def apply_policy(
    issues: list[FieldIssue],
    arrays: dict[str, pa.Array],
    policy: str,
    bad: dict[int, tuple[str, str]],
) -> list[FieldIssue]:
    """Drop or reject: returns the issues that became warnings, with their fields nulled in
    `arrays` (keyed like FieldIssue.field); rejected rows go to `bad` (first rule wins)."""
    warnings = []
    for item in issues:
        if item.shared or policy == DROP_FIELD:
            mask = np.zeros(len(arrays[item.field]), dtype=bool)
            mask[item.positions] = True
            arrays[item.field] = pc.if_else(
                pa.array(mask), pa.scalar(None, pa.string()), arrays[item.field]
            )
            item.reasons = [f"{reason}; {SENT_WITHOUT}" for reason in item.reasons]
            warnings.append(item)
        else:
            for pos, reason in zip(item.positions.tolist(), item.reasons, strict=True):
                bad.setdefault(pos, (item.column, reason))
    return warnings


def external_id_issue(column: str, arr: pa.Array, limit: int) -> FieldIssue | None:
    too_long = pc.greater(pc.utf8_length(arr), limit).fill_null(False)
    over = np.flatnonzero(too_long.to_numpy(zero_copy_only=False))
    if not len(over):
        return None
    return issue(
        "external_id", column, arr, over, ["external_id is over 255 characters"] * len(over)
    )


def shared_issue(name: str, mapping: Mapping, values: pa.Array, mask: np.ndarray) -> FieldIssue:
    where = np.flatnonzero(mask & values.is_valid().to_numpy(zero_copy_only=False))
    label = "phone number" if name == "phone_number" else name
    reason = f"{label} is shared with another customer's email in this export"
    found = issue(name, getattr(mapping, name) or name, values, where, [reason] * len(where))
    found.shared = True
    return found


# ---- profiles over the size limit -----------------------------------------------------------

_Members = list[tuple[str, pa.Array]]  # (key, `,"key":value` per row) as in the payload


def fragments(
    pos: int, top: _Members, location: _Members, props: _Members
) -> list[tuple[str, str, str]]:
    """One row's (group, key, JSON member text), for `shrink`."""
    index = pa.array([pos], pa.int64())
    out = []
    for group, members in (("", top), ("location", location), ("properties", props)):
        for key, arr in members:
            out.append((group, key, arr.take(index)[0].as_py() or ""))
    return out


def shrink_oversized(
    payload: pa.Array,
    over: list[int],
    members: tuple[_Members, _Members, _Members],
    df: pd.DataFrame,
    mapping: Mapping,
    sizes: np.ndarray,
    limit: int,
) -> tuple[pa.Array, list[FieldIssue]]:
    """Oversized rows rebuilt without their biggest fields (drop_field), and their warnings."""
    columns = {
        **{("", k): c for k, c in mapping.fields().items()},
        **{("location", k): c for k, c in mapping.location.items()},
        **{("properties", c): c for c in mapping.properties},
    }
    fixed: list[bytes | None] = []
    dropped: dict[int, list[tuple[str, str, int]]] = {}
    values: dict[int, dict[tuple[str, str], str]] = {}
    for pos in over:
        new, dropped[pos] = shrink(fragments(pos, *members), limit)
        fixed.append(new)  # never None: the email alone is far below the limit
        row = df.iloc[pos]
        values[pos] = {
            (g, k): "" if pd.isna(row[columns[g, k]]) else str(row[columns[g, k]])
            for g, k, _ in dropped[pos]
        }
    mask = np.zeros(len(payload), dtype=bool)
    mask[over] = True
    binary = pc.cast(payload, pa.binary())
    payload = pc.replace_with_mask(binary, pa.array(mask), pa.array(fixed, pa.binary()))
    return payload, size_issues(dropped, values, mapping, sizes)


def shrink(
    fragments: list[tuple[str, str, str]], limit: int
) -> tuple[bytes | None, list[tuple[str, str, int]]]:
    """Rebuild one oversized profile without its biggest fields until it fits.

    `fragments` are (group, key, `,"key":value` JSON text) in payload order, group "" for
    top-level attributes (email first), "location" or "properties" for members of those objects.
    Returns the new payload (None if even the email alone cannot fit) and the dropped
    (group, key, bytes) biggest first.
    """
    kept = [f for f in fragments if f[2]]
    dropped: list[tuple[str, str, int]] = []
    candidates = sorted(
        (f for f in kept if not (f[0] == "" and f[1] == "email")),
        key=lambda f: len(f[2].encode()),
        reverse=True,
    )
    payload = _assemble(kept)
    for fragment in candidates:
        if len(payload) <= limit:
            break
        kept.remove(fragment)
        dropped.append((fragment[0], fragment[1], len(fragment[2].encode())))
        payload = _assemble(kept)
    return (payload if len(payload) <= limit else None), dropped


def _assemble(fragments: list[tuple[str, str, str]]) -> bytes:
    parts = ['{"type":"profile","attributes":{']
    parts += [text for group, _, text in fragments if group == ""]
    for group in ("location", "properties"):
        inner = "".join(text for g, _, text in fragments if g == group)
        if inner:
            parts.append(f',"{group}":{{{inner[1:]}}}')
    parts.append("}}")
    return "".join(parts).encode()


def size_issues(
    dropped: dict[int, list[tuple[str, str, int]]],
    values: dict[int, dict[tuple[str, str], str]],
    mapping: Mapping,
    size: np.ndarray,
) -> list[FieldIssue]:
    """Warnings for the fields `shrink` dropped, one issue per (position, field)."""
    out = []
    columns = mapping.fields()
    for pos, fields in dropped.items():
        for group, key, nbytes in fields:
            column = (
                columns.get(key, key)
                if group == ""
                else mapping.location.get(key, key)
                if group == "location"
                else key
            )
            value = values[pos].get((group, key), "")
            if len(value) > _SHOWN_VALUE:
                value = value[:_SHOWN_VALUE] + "…"
            reason = (
                f"profile is {int(size[pos]):,} bytes serialized (limit 100 KB); "
                f"the {nbytes:,}-byte {column!r} value was dropped; {SENT_WITHOUT}"
            )
            field = key if group == "" else f"{group}.{key}"
            out.append(FieldIssue(field, column, np.array([pos], np.int64), [value], [reason]))
    return out


# ---- rejects and warnings as Reject records -------------------------------------------------


#: A source value kept for the rejects file is cut at this many characters: a longer one could
#: never be sent anyway (over Klaviyo's 100 KB per profile, so re-imported it is dropped again),
#: and it keeps the file within what CSV readers take (Python's csv: 131,072 per field).
MAX_KEPT_VALUE = 100_000


def source_values(
    df: pd.DataFrame, positions: list[int], columns: list[str]
) -> dict[int, tuple[tuple[str, str], ...]]:
    """The row's values of every mapped source column, as text ("" when empty; cut at
    MAX_KEPT_VALUE characters).

    Column at a time (one `column_texts` per column, not a pandas row tuple per row): a chunk can
    carry tens of thousands of warnings (a shared phone on every row of a household file)."""
    if not positions:
        return {}
    where = np.asarray(positions, dtype=np.int64)
    pairs = [list(zip(repeat(c), column_texts(df[c], where, MAX_KEPT_VALUE))) for c in columns]
    return dict(zip(positions, zip(*pairs, strict=True), strict=True))  # a row: its pairs


def column_texts(series: pd.Series, where: np.ndarray, limit: int | None = None) -> list[str]:
    """The values at positions `where` as text ("" when missing), cut at `limit` characters.

    Arrow-backed str columns (what the sources read) are taken with Arrow: a pandas `iloc` and a
    `str()` per value cost ~5 ms a chunk for a few hundred rows. Any other dtype keeps pandas'
    `tolist` and `str()`, whose text (numbers, timestamps, pd.NA) Arrow would not reproduce."""
    dtype = series.dtype
    if (
        isinstance(dtype, pd.StringDtype)
        and dtype.storage == "pyarrow"
        and dtype.na_value is not pd.NA
    ):
        taken = pa.array(series).take(pa.array(where, pa.int64()))
        values: list[str] = taken.fill_null("").to_pylist()
        longest = pc.max(pc.binary_length(taken)).as_py() if len(taken) else None
        if limit is None or longest is None or longest <= limit:
            return values  # a value of at most `limit` bytes has at most `limit` characters
        return [v[:limit] for v in values]
    return [
        "" if v is None or (isinstance(v, float) and v != v) else str(v)[:limit]
        for v in series.iloc[where].tolist()
    ]


def records(
    df: pd.DataFrame,
    mapping: Mapping,
    rows: np.ndarray,
    segment: str,
    emails: pa.Array,
    bad: dict[int, tuple[str, str]],
    warnings: list[FieldIssue],
) -> tuple[list[Reject], list[Reject], np.ndarray]:
    """(rejects in row order, warnings in row order, warned mask over the chunk's positions).

    Warnings of rows that are rejected anyway are left out: such a row has one final state.
    """
    n = len(df)
    columns = [c for c in mapping.columns() if c in df.columns]
    entries: list[tuple[int, int, str, str, str]] = []  # (pos, order, column, value, reason)
    for order, item in enumerate(warnings):
        for pos, value, reason in zip(
            item.positions.tolist(), item.values, item.reasons, strict=True
        ):
            if pos not in bad:
                entries.append((pos, order, item.column, value, reason))
    entries.sort()
    warned = np.zeros(n, dtype=bool)
    warned[[e[0] for e in entries]] = True
    positions = sorted({*bad, *(e[0] for e in entries)})
    values = source_values(df, positions, columns)
    taken = emails.take(pa.array(positions, pa.int64())).to_pylist()
    email_of = dict(zip(positions, taken, strict=True))
    raw = _raw_values(df, bad)
    rejects = [
        Reject(
            row=int(rows[pos]),
            segment=segment,
            column=bad[pos][0],
            value=raw[pos],
            reason=bad[pos][1],
            state=RowState.INVALID,
            email=email_of[pos] or "",
            source_values=values[pos],
        )
        for pos in sorted(bad)
    ]
    kept = [
        Reject(
            row=int(rows[pos]),
            segment=segment,
            column=column,
            value=value,
            reason=reason,
            state=RowState.IMPORTED_WITH_WARNINGS,
            email=email_of[pos] or "",
            source_values=values[pos],
        )
        for pos, _, column, value, reason in entries
    ]
    return rejects, kept, warned


def _raw_values(df: pd.DataFrame, bad: dict[int, tuple[str, str]]) -> dict[int, str]:
    by_column: dict[str, list[int]] = {}
    for pos in sorted(bad):
        by_column.setdefault(bad[pos][0], []).append(pos)
    out: dict[int, str] = {}
    for column, where in by_column.items():
        got = (
            column_texts(df[column], np.asarray(where, dtype=np.int64))
            if column in df.columns
            else [""] * len(where)
        )
        out.update(zip(where, got, strict=True))
    return out
