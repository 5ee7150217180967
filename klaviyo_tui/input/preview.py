"""Helpers for the mapping screen: which column holds emails, and what an export of a sample of
rows would do locally (valid, invalid, duplicate, sent without a field), with examples."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from klaviyo_tui.input.fastcheck import email_fast
from klaviyo_tui.input.fields import DROP_FIELD
from klaviyo_tui.input.identifiers import IDENTIFIERS, shared_in_frame
from klaviyo_tui.input.jsoncols import lower, text
from klaviyo_tui.input.mapping import identifier_keys, validate_chunk
from klaviyo_tui.input.pipeline import email_keys
from klaviyo_tui.store.config import Mapping


@dataclass
class PreviewReport:
    """Counts for the mapping screen, each with up to 5 example values.

    `invalid_phones` and `other_invalid` count field problems whether the row is sent without
    the field (`drop_field`, then counted in `warned` too) or rejected (`reject_row`)."""

    rows: int = 0
    valid: int = 0
    invalid_emails: int = 0
    invalid_phones: int = 0
    duplicates: int = 0
    other_invalid: int = 0
    warned: int = 0  # valid rows that would be sent without a field
    examples: dict[str, list[str]] = field(default_factory=dict)


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


def validation_preview(
    df: pd.DataFrame,
    mapping: Mapping,
    default_region: str,
    *,
    on_invalid_field: str = DROP_FIELD,
) -> PreviewReport:
    """What an export of these rows would do locally: valid, invalid, duplicate, with examples."""
    ids = {f: c for f, c in mapping.fields().items() if f in IDENTIFIERS}
    emails = email_keys(df[mapping.email])
    keys = {f: identifier_keys(f, df[c], default_region) for f, c in ids.items()}
    chunk = validate_chunk(
        df,
        mapping,
        default_region=default_region,
        segment="preview",
        on_invalid_field=on_invalid_field,
        shared=shared_in_frame(emails, keys),
    )
    report = PreviewReport(rows=len(df))
    ex: dict[str, list[str]] = {
        "invalid_emails": [],
        "invalid_phones": [],
        "duplicates": [],
        "other_invalid": [],
    }
    for rej in [*chunk.rejects, *chunk.warnings]:
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
    report.warned = int(chunk.warned_array.sum())
    report.examples = ex
    return report
