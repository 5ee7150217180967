"""What the Check tab says: the validation of the first matching rows, and what will be sent.

Everything is built as `Content` from plain strings, so values from the data (examples, column
names, the filter) are shown as text, never read as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.content import Content

from klaviyo_tui.store.config import Mapping
from klaviyo_tui.tui.screens.builder.fields import column_text, shown

PREVIEW_ROWS = 500
DROP_FIELD = "drop_field"
REJECT_ROW = "reject_row"


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The first matching rows, validated twice: as sent in full, and without phone/external_id.

    `full` judges a bad phone or external_id as a rejected row (reject_row); `kept` is what a
    drop_field export sends, where those fields are left out and the row goes on.
    """

    rows: int
    filter: str | None
    matching: int | None  # rows matching in the whole source, when counted
    full: Any  # mapping.PreviewReport
    kept: Any


def scope(outcome: CheckOutcome) -> Content:
    """'Checked the first 500 of the 1,204 rows matching tier = 'gold':' and its variants."""
    n, total = outcome.rows, outcome.matching
    if outcome.filter:
        where = Content.assemble(" matching ", (shown(outcome.filter, 60), "italic"))
        if n == 0:
            return Content.assemble("No rows", where, ": nothing would be sent.")
        if n < PREVIEW_ROWS:
            return Content.assemble(f"Checked all {n:,} rows", where, ":")
        of = f"the {total:,} rows" if total is not None else "the rows"
        return Content.assemble(f"Checked the first {n:,} of {of}", where, ":")
    if n == 0:
        return Content("The source has no rows: nothing would be sent.")
    if n < PREVIEW_ROWS:
        return Content(f"Checked all {n:,} rows (no filter):")
    of = f" of {total:,}" if total is not None else ""
    return Content(f"Checked the first {n:,}{of} rows (no filter):")


def _example(text: str) -> list[Content]:
    """`row 88: 'x' (why)` as two indented lines, clipped so 80 columns do not wrap them (the
    rejects file has them in full)."""
    where, sep, why = text.partition(" (")
    if not sep or not why.endswith(")"):
        return [Content(f"   e.g. {shown(text, 64)}")]
    return [
        Content(f"   e.g. {shown(where, 64)}"),
        Content.styled(f"        {shown(why[:-1], 64)}", "dim"),
    ]


def _count(n: int, label: str, what: str = "", width: int = 0) -> Content:
    return Content.assemble((f"{n:,}".rjust(width), "bold"), f" {label}", what)


def render_report(outcome: CheckOutcome, on_invalid: str) -> Content:
    """One line per check (count, then an example), worded for the chosen on_invalid_field."""
    lines = [scope(outcome)]
    if outcome.rows == 0:
        return Content("\n").join(lines)
    full, kept = outcome.full, outcome.kept
    drop = on_invalid != REJECT_ROW
    judged = kept if drop else full
    examples: dict[str, list[str]] = getattr(judged, "examples", {}) or {}
    w = len(f"{max(judged.valid, judged.invalid_emails, judged.invalid_phones):,}")
    lines.append(_count(judged.valid, "valid and would be sent", width=w))
    if drop and judged.warned:
        lines.append(_count(judged.warned, "of them without a field (see below)", width=w))
    lines.append(_count(judged.invalid_emails, "invalid emails", width=w))
    lines += [line for e in examples.get("invalid_emails", [])[:1] for line in _example(e)]
    fate = ": the phone is dropped, the row still sent" if drop else ": the row is skipped"
    phones = judged.invalid_phones
    lines.append(_count(phones, "invalid or shared phones", fate if phones else "", width=w))
    lines += [line for e in examples.get("invalid_phones", [])[:1] for line in _example(e)]
    if judged.other_invalid:
        fate = ": dropped, the row still sent" if drop else ": the row is skipped"
        lines.append(_count(judged.other_invalid, "other unusable values", fate, width=w))
        lines += [line for e in examples.get("other_invalid", [])[:1] for line in _example(e)]
    lines.append(_count(judged.duplicates, "duplicate emails (the last one wins)", width=w))
    rule = "Rows with an invalid email are" if drop else "Invalid rows are"
    lines.append(Content(f"{rule} skipped and listed in the run's rejects."))
    return Content("\n").join(lines)


def render_summary(mapping: Mapping | str, columns: list[str]) -> Content:
    """Which columns go to which Klaviyo fields, which are custom properties, which stay home."""
    title = Content.styled("What will be sent", "bold")
    if isinstance(mapping, str):
        return Content.assemble(title, "\n", mapping)

    def pairs(items: dict[str, str]) -> str:
        return ", ".join(f"{field} ← {column_text(c, 30)}" for field, c in items.items())

    lines = [title, Content(f"  profile: {pairs(mapping.fields())}")]
    if mapping.location:
        lines.append(Content(f"  location: {pairs(mapping.location)}"))
    props = ", ".join(column_text(c, 30) for c in mapping.properties)
    lines.append(
        Content(f"  custom properties: {props}")
        if props
        else Content("  custom properties: none (tick columns on the Columns tab)")
    )
    used = set(mapping.columns())
    unused = [column_text(c, 30) for c in columns if c not in used]
    if unused:
        lines.append(Content.styled(f"  not sent: {', '.join(unused)}", "dim"))
    return Content("\n").join(lines)
