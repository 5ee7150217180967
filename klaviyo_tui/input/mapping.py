"""Turn one chunk of source rows into Klaviyo profile payloads (bytes) and rejects.

Column-at-a-time with pyarrow.compute: strict vectorised checks settle most emails and phones
(input/fastcheck.py) and only the rest meet email-validator / phonenumbers row by row. The JSON
is assembled from per-column fragments (`"first_name":"Ada"`) joined per row, so no Python dict is
built per profile; strings needing escapes go through orjson.

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

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.input.fastcheck import email_fast, phone_fast
from klaviyo_tui.input.jsoncols import cat, json_object, lower, member, only_bytes, text
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

    @property
    def payloads(self) -> list[bytes]:
        return self.payload_array.to_pylist()

    @property
    def emails(self) -> list[str]:
        return self.email_array.to_pylist()

    @property
    def rows(self) -> list[int]:
        return self.row_array.tolist()

    @property
    def valid(self) -> int:
        return len(self.row_array)


@dataclass
class PreviewReport:
    """Counts for the mapping screen, each with up to 5 example values."""

    rows: int = 0
    valid: int = 0
    invalid_emails: int = 0
    invalid_phones: int = 0
    duplicates: int = 0
    other_invalid: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)


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


def property_member(column: str, series: pd.Series, kind: str | None) -> pa.Array:
    """`,"column":value` for one custom property column ("" where empty)."""
    arr = text(series)
    if pd.api.types.is_bool_dtype(series.dtype):
        return member(column, lower(arr), quoted=False)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return member(column, arr, quoted=False)  # typed source: finite numbers stay numbers
    kind = kind or pick_kind(infer_kinds(arr))
    if kind == "number":
        return member(column, arr, quoted=False)
    if kind == "bool":
        return member(column, lower(arr), quoted=False)
    if kind == "date":
        iso = pc.replace_substring(arr, " ", "T", max_replacements=1)
        return member(column, iso, quoted=True)
    return member(column, arr, quoted=True)


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


def validate_chunk(
    df: pd.DataFrame,
    mapping: Mapping,
    *,
    default_region: str,
    segment: str,
    kinds: dict[str, str] | None = None,
) -> ValidatedChunk:
    """Validate and serialize one chunk (index = source row numbers)."""
    n = len(df)
    rows = np.asarray(df.index, dtype=np.int64)
    bad: dict[int, tuple[str, str]] = {}  # position -> (column, reason); first rule wins

    email_raw = text(df[mapping.email])
    email_norm = lower(email_raw)
    ok = email_fast(email_norm)
    emails, reasons = _settle(
        email_raw, ok, pc.if_else(pa.array(ok), email_norm, None), careful_email
    )
    for pos in np.flatnonzero(~email_raw.is_valid().to_numpy(zero_copy_only=False)).tolist():
        bad[pos] = (mapping.email, "email is missing")
    for pos, reason in reasons.items():
        bad.setdefault(pos, (mapping.email, reason))

    fields: dict[str, pa.Array] = {"email": emails}
    if mapping.phone_number:
        phone_raw = text(df[mapping.phone_number])
        fast_ok, e164 = phone_fast(phone_raw.fill_null(""), default_region)
        phones, reasons = _settle(
            phone_raw, fast_ok, e164, lambda v: careful_phone(v, default_region)
        )
        for pos, reason in reasons.items():
            bad.setdefault(pos, (mapping.phone_number, reason))
        fields["phone_number"] = phones
    for name, column in mapping.fields().items():
        if name not in ("email", "phone_number"):
            fields[name] = text(df[column])
    if "external_id" in fields:
        too_long = pc.greater(pc.utf8_length(fields["external_id"]), MAX_EXTERNAL_ID)
        over = np.flatnonzero(too_long.fill_null(False).to_numpy(zero_copy_only=False))
        for ext_pos in over.tolist():
            bad.setdefault(
                ext_pos, (mapping.external_id or "", "external_id is over 255 characters")
            )

    members: list[pa.Array | str] = ['{"type":"profile","attributes":{']
    members += [
        member(name, values, quoted=True, first=name == "email") for name, values in fields.items()
    ]
    location = [member(k, text(df[c]), quoted=True) for k, c in mapping.location.items()]
    props = [property_member(c, df[c], (kinds or {}).get(c)) for c in mapping.properties]
    for obj in (json_object("location", location, n), json_object("properties", props, n)):
        if obj is not None:
            members.append(obj)
    members.append("}}")
    payload = cat(members, n)
    sizes = pc.binary_length(payload).fill_null(0).to_numpy(zero_copy_only=False)
    for pos in np.flatnonzero(sizes > MAX_PROFILE_BYTES).tolist():
        bad.setdefault(pos, ("", f"profile is {sizes[pos]} bytes serialized (limit 100 KB)"))

    keep = np.ones(n, dtype=bool)
    if bad:
        keep[list(bad)] = False
    keep_arr = pa.array(keep)
    rejects = _rejects(df, bad, rows, segment)
    return ValidatedChunk(
        segment=segment,
        payload_array=pc.cast(payload.filter(keep_arr), pa.binary()),
        email_array=emails.filter(keep_arr),
        row_array=rows[keep],
        rejects=rejects,
        read=n,
    )


def _rejects(
    df: pd.DataFrame, bad: dict[int, tuple[str, str]], rows: np.ndarray, segment: str
) -> list[Reject]:
    positions = sorted(bad)
    by_column: dict[str, list[int]] = {}
    for pos in positions:
        by_column.setdefault(bad[pos][0], []).append(pos)
    values: dict[int, object] = {}
    for column, where in by_column.items():
        got = df[column].iloc[where].tolist() if column else [""] * len(where)
        values.update(zip(where, got, strict=True))
    out = []
    for pos in positions:
        column, reason = bad[pos]
        value = values[pos]
        out.append(
            Reject(
                row=int(rows[pos]),
                segment=segment,
                column=column,
                value=""
                if value is None or (isinstance(value, float) and value != value)
                else str(value),
                reason=reason,
                state=RowState.INVALID,
            )
        )
    return out


# ---- helpers for the mapping screen ---------------------------------------------------------

_EMAIL_NAME = re.compile(r"^(e[-_ ]?mail|email[-_ ]?address|mail)$", re.I)


def detect_email_column(df: pd.DataFrame) -> str | None:
    """The column that holds emails: by name first, else the one whose values look most like it."""
    for column in df.columns:
        if _EMAIL_NAME.match(str(column).strip()):
            return str(column)
    best, best_share = None, 0.0
    for column in df.columns:
        values = text(df[column]).drop_null()
        if len(values) == 0:
            continue
        share = float(np.mean(email_fast(lower(values))))
        if share > best_share:
            best, best_share = str(column), share
    return best if best_share >= 0.5 else None


def validation_preview(df: pd.DataFrame, mapping: Mapping, default_region: str) -> PreviewReport:
    """What an export of these rows would do locally: valid, invalid, duplicate, with examples."""
    chunk = validate_chunk(df, mapping, default_region=default_region, segment="preview")
    report = PreviewReport(rows=len(df))
    ex: dict[str, list[str]] = {
        "invalid_emails": [],
        "invalid_phones": [],
        "duplicates": [],
        "other_invalid": [],
    }
    for rej in chunk.rejects:
        key = (
            "invalid_emails"
            if rej.column == mapping.email
            else "invalid_phones"
            if mapping.phone_number and rej.column == mapping.phone_number
            else "other_invalid"
        )
        setattr(report, key, getattr(report, key) + 1)
        if len(ex[key]) < 5:
            ex[key].append(f"row {rej.row}: {rej.value!r} ({rej.reason})")
    seen: dict[str, int] = {}
    for email, row in zip(chunk.emails, chunk.rows, strict=True):
        if email in seen:
            report.duplicates += 1
            if len(ex["duplicates"]) < 5:
                ex["duplicates"].append(f"row {seen[email]} and row {row}: {email}")
        seen[email] = row
    report.valid = chunk.valid - report.duplicates
    report.examples = ex
    return report
