"""Turn one chunk of source rows into Klaviyo profile payloads (bytes) and rejects.

Column-at-a-time with pyarrow.compute: strict vectorised checks settle most emails and phones
(input/fastcheck.py) and only the rest meet email-validator / phonenumbers row by row. The JSON
is assembled from per-column pieces (`"first_name":"` + value + `"`) joined once per chunk
(jsoncols.profiles), so no Python dict is built per profile; strings needing escapes go through
orjson.

Rules, in the order a row is judged (one reject per row, for the first rule it breaks):
- email: mandatory; trimmed, lower-cased, syntax-checked like email-validator (no DNS);
  internationalized domains are sent as punycode, non-ASCII local parts are rejected.
- phone_number: converted to E.164 with phonenumbers and the export's default region.
- external_id: at most 255 characters.
- the serialized profile: at most 100,000 bytes (Klaviyo's 100 KB, read strictly).
Empty values are dropped (never null or ""); location fields go under `attributes.location`.

Custom property typing (`infer_kinds`): a column is sent as numbers when every non-empty value is
a plain decimal (`-?(0|[1-9]\\d{0,14})(\\.\\d+)?`, so "02134" and long ids stay strings), as
booleans when every value is true/false (any case), as ISO 8601 strings when every value is an ISO
date or date-time (a space separator becomes "T"); otherwise as strings. The pipeline decides the
kinds over the whole export in its first pass, so a column keeps one type across chunks; called
alone, `validate_chunk` decides per chunk. Typed sources (Parquet, JSON) keep their numbers,
booleans and timestamps.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from klaviyo_tui.events import Reject
from klaviyo_tui.input.fastcheck import email_fast, phone_fast
from klaviyo_tui.input.fields import (
    DROP_FIELD,
    REJECT_ROW,
    FieldIssue,
    apply_policy,
    coordinate_issue,
    external_id_issue,
    issue,
    records,
    shared_issue,
    shrink_oversized,
)
from klaviyo_tui.input.jsoncols import Field, json_field, lower, only_bytes, profiles, text
from klaviyo_tui.store.config import Mapping

MAX_PROFILE_BYTES = 100_000
MAX_EXTERNAL_ID = 255

_NUMBER_RE = r"^-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]+)?$"
_BOOL_RE = r"(?i)^(?:true|false)$"
_DATE_RE = (
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
KINDS = ("number", "bool", "date", "string")


@dataclass
class ValidatedChunk:
    """One chunk's outcome. The valid rows' payloads/emails/rows are aligned Arrow/numpy columns
    (no Python object per row; the list properties are for tests and small callers); rejects are
    in row order."""

    segment: str
    payload_array: pa.Array  # binary: each valid row's profile JSON
    email_array: pa.Array  # string: the normalized emails
    row_array: np.ndarray  # int64: source row numbers
    rejects: list[Reject]
    read: int = 0  # rows of the chunk (after the segment filter)
    # rows sent without a field (input/fields.py): one warning per dropped field, in row order,
    # and a flag per valid row, aligned with row_array
    warnings: list[Reject] = field(default_factory=list)
    warned_array: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def payloads(self) -> list[bytes]:
        return cast(list[bytes], self.payload_array.to_pylist())  # pyarrow/numpy: Any

    @property
    def emails(self) -> list[str]:
        return cast(list[str], self.email_array.to_pylist())

    @property
    def rows(self) -> list[int]:
        return cast(list[int], self.row_array.tolist())

    @property
    def valid(self) -> int:
        return len(self.row_array)

    @property
    def warned(self) -> list[bool]:
        flags: list[bool] = self.warned_array.tolist()
        return flags


# ---- property typing ------------------------------------------------------------------------


def infer_kinds(arr: pa.Array, candidates: set[str] | None = None) -> set[str]:
    """Which JSON kinds every non-empty value of this column could be sent as.

    `candidates` (kinds still possible from earlier chunks) spares the checks that cannot matter.
    """
    values = arr.drop_null()
    kinds = {"string"}
    if len(values) == 0:
        return set(KINDS)
    for kind, pattern, chars in (
        ("number", _NUMBER_RE, b"0123456789.-"),
        ("bool", _BOOL_RE, b"truefalsTRUEFALS"),
        ("date", _DATE_RE, b"0123456789-:.+TZ "),
    ):
        if candidates is not None and kind not in candidates:
            continue
        if only_bytes(values, chars) and pc.all(pc.match_substring_regex(values, pattern)).as_py():
            kinds.add(kind)
            break  # the three shapes exclude one another
    return kinds


def pick_kind(kinds: set[str]) -> str:
    for kind in KINDS:
        if kind in kinds:
            return kind
    return "string"


def property_field(column: str, series: pd.Series, kind: str | None) -> Field:
    """The `"column":value` member of one custom property column (absent where empty)."""
    arr = text(series)
    if pd.api.types.is_bool_dtype(series.dtype):
        return json_field(column, lower(arr), quoted=False)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return json_field(column, arr, quoted=False)  # typed source: finite numbers stay numbers
    kind = kind or pick_kind(infer_kinds(arr))
    if kind == "number":
        return json_field(column, arr, quoted=False)
    if kind == "bool":
        return json_field(column, lower(arr), quoted=False)
    if kind == "date":
        iso = pc.replace_substring(arr, " ", "T", max_replacements=1)
        return json_field(column, iso, quoted=True)
    return json_field(column, arr, quoted=True)


# ---- careful per-row checks -----------------------------------------------------------------


# Values that miss the fast path are mostly junk that repeats ("0000000", "n/a"); both passes meet
# each email, so the careful verdicts are cached (pure functions; bounded, ~10 MB at most).
_CAREFUL_CACHE = 1 << 16


@lru_cache(maxsize=_CAREFUL_CACHE)
def careful_email(value: str) -> tuple[str | None, str]:
    """(normalized email, "") or (None, reason), by email-validator without DNS.

    Klaviyo takes ASCII addresses, so an internationalized domain (`user@bücher.de`) is sent in
    its punycode form (`user@xn--bcher-kva.de`, the same mailbox), and a non-ASCII part before
    the "@" (which has no ASCII form) is rejected here with that reason rather than by Klaviyo.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        # strict: RFC 5321's 64-octet local part too, which Klaviyo enforces
        result = validate_email(value, check_deliverability=False, strict=True)
    except EmailNotValidError as exc:
        return None, f"invalid email: {exc}"
    if result.ascii_email is None:
        return None, (
            "invalid email: non-ASCII characters before the @ (an internationalized mailbox); "
            "Klaviyo accepts ASCII email addresses only"
        )
    return result.ascii_email.lower(), ""


@lru_cache(maxsize=_CAREFUL_CACHE)
def careful_phone(value: str, region: str) -> tuple[str | None, str]:
    """(E.164, "") or (None, reason), by phonenumbers with the default region."""
    import phonenumbers

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        return None, f"invalid phone number: {exc._msg}"
    if not phonenumbers.is_valid_number(number):
        return None, f"invalid phone number (not a valid number; default region {region})"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""


def _settle(
    arr: pa.Array, fast_ok: np.ndarray, fast_values: pa.Array, check: object
) -> tuple[pa.Array, dict[int, str]]:
    """Merge fast results with careful ones for unsettled non-null values; reasons by position."""
    present = arr.is_valid().to_numpy(zero_copy_only=False)
    slow = np.flatnonzero(present & ~fast_ok)
    reasons: dict[int, str] = {}
    if len(slow) == 0:
        return fast_values, reasons
    values = fast_values
    fixed: list[str | None] = []
    for pos, raw in zip(slow.tolist(), arr.take(pa.array(slow)).to_pylist(), strict=True):
        good, reason = check(raw)  # type: ignore[operator]
        fixed.append(good)
        if good is None:
            reasons[pos] = reason
    mask = np.zeros(len(arr), dtype=bool)
    mask[slow] = True
    values = pc.replace_with_mask(values, pa.array(mask), pa.array(fixed, pa.string()))
    return values, reasons


# ---- the chunk ------------------------------------------------------------------------------


def phones_e164(
    raw: pa.Array, region: str, known: pa.Array | None = None
) -> tuple[pa.Array, dict[int, str]]:
    """Each phone in E.164 (null where empty or unusable) and, by position, why unusable.

    `known`: the E.164 values already worked out (the first pass's); then only the unusable
    ones are looked at again, for their reason."""
    if known is not None:
        return known, _reasons(raw, known, lambda v: careful_phone(v, region))
    encoded = pc.dictionary_encode(raw)
    distinct = encoded.dictionary
    if len(distinct) > len(raw) * _DISTINCT_SHARE:
        return _phones(raw, region)
    # Phones repeat (households, placeholders, a shop's own number): each distinct value is
    # settled once, then spread back to the rows.
    values, reasons = _phones(distinct, region)
    codes = encoded.indices
    spread = values.take(codes)
    if not reasons:
        return spread, {}
    bad = np.zeros(len(distinct), dtype=bool)
    bad[list(reasons)] = True
    code_np = codes.fill_null(0).to_numpy(zero_copy_only=False)
    hit = np.flatnonzero(bad[code_np] & codes.is_valid().to_numpy(zero_copy_only=False))
    return spread, {p: reasons[c] for p, c in zip(hit.tolist(), code_np[hit].tolist(), strict=True)}


#: Above this share of distinct values, phones are settled row by row (no spreading back).
_DISTINCT_SHARE = 0.8


def _phones(raw: pa.Array, region: str) -> tuple[pa.Array, dict[int, str]]:
    fast_ok, e164 = phone_fast(raw.fill_null(""), region)
    return _settle(raw, fast_ok, e164, lambda v: careful_phone(v, region))


def _reasons(raw: pa.Array, known: pa.Array, check: object) -> dict[int, str]:
    """Why each present value that normalised to null is unusable, by position."""
    unusable = raw.is_valid().to_numpy(zero_copy_only=False) & ~known.is_valid().to_numpy(
        zero_copy_only=False
    )
    where = np.flatnonzero(unusable)
    values = raw.take(pa.array(where)).to_pylist() if len(where) else []
    return {
        p: check(v)[1] or READ_TWO_WAYS  # type: ignore[operator]
        for p, v in zip(where.tolist(), values, strict=True)
    }


#: Why a value the first pass found unusable is, though it reads as usable now: a source typed
#: chunk by chunk (JSON Lines) read the cell as another text there ("4155550101.0" beside text).
READ_TWO_WAYS = (
    "the value reads differently in different parts of the file (its column mixes numbers and "
    "text); write it as text"
)


def identifier_keys(field: str, series: pd.Series, region: str) -> pa.Array:
    """An identifier as it would be sent (phone in E.164, external_id as text), null where
    empty or unusable: the key for input/identifiers.py."""
    values = text(series)
    if field == "phone_number":
        return phones_e164(values, region)[0]
    too_long = pc.greater(pc.utf8_length(values), MAX_EXTERNAL_ID).fill_null(False)
    return pc.if_else(too_long, pa.scalar(None, pa.string()), values)


def validate_chunk(
    df: pd.DataFrame,
    mapping: Mapping,
    *,
    default_region: str,
    segment: str,
    kinds: dict[str, str] | None = None,
    on_invalid_field: str = DROP_FIELD,
    shared: MappingABC[str, np.ndarray] | None = None,
    phones: pa.Array | None = None,
    emails: pa.Array | None = None,
) -> ValidatedChunk:
    """Validate and serialize one chunk (index = source row numbers).

    `on_invalid_field` is the field policy (input/fields.py); `shared` marks, per identifier
    field ("phone_number", "external_id"), the rows whose value another customer's email also
    has in this export (input/identifiers.py): those go without it, with a warning. `phones`:
    the phone column already in E.164, and `emails` the normalised emails (null where missing
    or invalid): the pipeline's first pass worked them out.
    """
    n = len(df)
    rows = np.asarray(df.index, dtype=np.int64)
    bad: dict[int, tuple[str, str]] = {}  # position -> (column, reason); first rule wins

    email_raw = text(df[mapping.email])
    if emails is None:
        email_norm = lower(email_raw)
        ok = email_fast(email_norm)
        emails, reasons = _settle(
            email_raw, ok, pc.if_else(pa.array(ok), email_norm, None), careful_email
        )
    else:  # only the unusable ones are looked at again, for their reason
        reasons = _reasons(email_raw, emails, careful_email)
    for pos in np.flatnonzero(~email_raw.is_valid().to_numpy(zero_copy_only=False)).tolist():
        bad[pos] = (mapping.email, "email is missing")
    for pos, reason in reasons.items():
        bad.setdefault(pos, (mapping.email, reason))

    arrays: dict[str, pa.Array] = {"email": emails}
    issues: list[FieldIssue] = []
    for name, column in mapping.fields().items():
        if name == "phone_number":
            phone_raw = text(df[column])
            arrays[name], reasons = phones_e164(phone_raw, default_region, phones)
            if reasons:
                where = sorted(reasons)
                why = [reasons[p] for p in where]
                issues.append(issue(name, column, phone_raw, where, why))
        elif name != "email":
            arrays[name] = text(df[column])
            if name == "external_id" and (
                found := external_id_issue(column, arrays[name], MAX_EXTERNAL_ID)
            ):
                issues.append(found)
    for key, column in mapping.location.items():
        arrays[f"location.{key}"] = text(df[column])
        found = None
        if key in ("latitude", "longitude"):
            found = coordinate_issue(key, column, arrays[f"location.{key}"])
        if found:
            issues.append(found)
    for name, mask in (shared or {}).items():
        if name in arrays and mask.any():
            issues.append(shared_issue(name, mapping, arrays[name], mask))
    warnings = apply_policy(issues, arrays, on_invalid_field, bad)

    top = [json_field(name, arrays[name], quoted=True) for name in arrays if "." not in name]
    location = [json_field(k, arrays[f"location.{k}"], quoted=True) for k in mapping.location]
    props = [property_field(c, df[c], (kinds or {}).get(c)) for c in mapping.properties]
    payload = profiles(n, top, [("location", location), ("properties", props)])
    sizes = pc.binary_length(payload).fill_null(0).to_numpy(zero_copy_only=False)
    over = [p for p in np.flatnonzero(sizes > MAX_PROFILE_BYTES).tolist() if p not in bad]
    if over and on_invalid_field == REJECT_ROW:
        for pos in over:
            bad[pos] = ("", f"profile is {sizes[pos]:,} bytes serialized (limit 100 KB)")
    elif over:
        members = (
            [(f.key, f.member(first=i == 0)) for i, f in enumerate(top)],
            [(f.key, f.member()) for f in location],
            [(f.key, f.member()) for f in props],
        )
        payload, more = shrink_oversized(
            payload, over, members, df, mapping, sizes, MAX_PROFILE_BYTES
        )
        warnings += more

    rejects, warning_records, warned = records(df, mapping, rows, segment, emails, bad, warnings)
    keep = np.ones(n, dtype=bool)
    if bad:
        keep[list(bad)] = False
    keep_arr = pa.array(keep)
    return ValidatedChunk(
        segment=segment,
        payload_array=pc.cast(payload.filter(keep_arr), pa.binary()),
        email_array=emails.filter(keep_arr),
        row_array=rows[keep],
        rejects=rejects,
        read=n,
        warnings=warning_records,
        warned_array=warned[keep],
    )
