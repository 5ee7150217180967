"""The per-run rejects CSV: every row that was not imported, with its source row and the reason.

Written from the history store (the one source of truth) at the end of a run. Cells that a
spreadsheet would run as a formula are prefixed with a quote (CSV injection).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from klaviyo_tui.store import paths
from klaviyo_tui.store.history import HistoryStore

HEADER = ("segment", "row", "state", "column", "value", "reason")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def path_for(run_id: int) -> Path:
    return paths.rejects_dir() / f"run-{run_id}-rejects.csv"


def safe_cell(value: str) -> str:
    """Neutralise spreadsheet formulas (`=HYPERLINK(...)`) without losing the text."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def write(store: HistoryStore, run_id: int, path: Path | None = None) -> Path | None:
    """Write the run's rejects CSV (atomically); no file when the run has no rejects."""
    failures = store.failures(run_id)
    target = path or path_for(run_id)
    if not failures:
        if path is None and target.exists():
            target.unlink()
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for reject in sorted(failures, key=lambda r: (r.segment, r.row)):
            writer.writerow(
                (
                    reject.segment,
                    reject.row,
                    reject.state.value,
                    safe_cell(reject.column),
                    safe_cell(reject.value),
                    safe_cell(reject.reason),
                )
            )
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    return target
