"""Render mapping.validation_preview's PreviewReport as a few readable lines with examples."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

CHECKS = (
    ("invalid_emails", "invalid emails"),
    ("invalid_phones", "invalid phones"),
    ("duplicates", "duplicate emails (the last one wins)"),
    ("other_invalid", "other invalid values"),
)


def render_report(report: Any, rows: int) -> str:
    """One line per check: the count, then up to two examples."""
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
        for example in examples.get(attr, [])[:2]:
            lines.append(f"   e.g. {escape(example)}")
    lines.append("Invalid rows are skipped and listed in the run's rejects.")
    return "\n".join(lines)
