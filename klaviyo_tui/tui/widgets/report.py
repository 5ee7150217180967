"""Render preview.validation_preview's PreviewReport as a few readable lines with examples."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

CHECKS = (
    ("invalid_emails", "invalid emails"),
    ("invalid_phones", "invalid phones"),
    ("duplicates", "duplicate emails (the last one wins)"),
    ("other_invalid", "other invalid values"),
)


def _example(text: str) -> list[str]:
    """`row 88: 'x' (why)` as two indented lines, so 80 columns do not wrap it mid-word."""
    where, sep, why = text.partition(" (")
    if not sep or not why.endswith(")"):
        return [f"   e.g. {escape(text)}"]
    return [f"   e.g. {escape(where)}", f"        [dim]{escape(why[:-1])}[/dim]"]


def render_report(report: Any, rows: int) -> str:
    """One line per check: the count, then one example (value, then why)."""
    examples: dict[str, list[str]] = getattr(report, "examples", {}) or {}
    lines = [
        f"Checked the first {getattr(report, 'rows', rows):,} rows: "
        f"[b]{report.valid:,}[/b] valid and would be sent."
    ]
    for attr, label in CHECKS:
        count = int(getattr(report, attr, 0))
        if not count and attr == "other_invalid":
            continue
        lines.append(f"[b]{count:,}[/b] {label}")
        for example in examples.get(attr, [])[:1]:
            lines.extend(_example(example))
    lines.append("Invalid rows are skipped and listed in the run's rejects.")
    return "\n".join(lines)
