"""The per-run rejects CSV: every row that was not imported, and every field a row was sent
without, with its source row, the reason, its email and its mapped source values.

Written from the history store (the one source of truth) at the end of a run. Columns: `segment,
row, state, column, value, reason, klaviyo_email`, then the row's values of every mapped source
column under the source's own column names, so the file itself can be fixed and imported again
as a segment source with the same export mapping (README, "Fixing rejected rows"). A source column
named like one of the file's own columns keeps its name; the file's column is then prefixed
`reject_`. A warning line (a field a sent row went without) carries the row's final state:
`imported_with_warnings`, or `rejected_by_klaviyo` when Klaviyo then refused the row. Rows that
Klaviyo refused have only the email beside them (sent rows' values are not kept).

The cells keep the raw values (they are the user's data, needed to fix the rows) with three
exceptions, each reversible by eye:
- a cell a spreadsheet would run as a formula gets a leading `'` (CSV injection; OWASP and ASVS
  1.2.10 list `=`, `+`, `-`, `@`, tab, CR, LF and NUL as triggers, and spreadsheets skip leading
  blanks before one). DDE payloads (`=cmd|' /C calc'!A0`, `@SUM(1)*cmd|…`) start with one of these
  too; `|` or `%` alone at the start of a cell is not a documented trigger, so it is left as is.
  A phone number or a signed number (`+1 415 555 0100`, `-12.5`: a sign, then only digits,
  spaces and `( ) . -`) is left as it is: it can name no function or cell, and the round trip
  needs it intact;
- C0/C1 control characters other than tab and newline are written as `\\x1b`, so `cat`-ing the
  file in a terminal can't run escape sequences;
- anything shaped like an API key is masked (Klaviyo's error text may echo it).

The file is private (0600) and written atomically through a temporary file from `mkstemp` in the
same folder; `os.replace` swaps the name itself, so a symlink planted at the target (or anywhere
a predictable temporary name would have been) is replaced, never followed.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.redaction import redact
from klaviyo_tui.store import paths
from klaviyo_tui.store.history import HistoryStore

HEADER = ("segment", "row", "state", "column", "value", "reason", "klaviyo_email")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
_SIGNED_NUMBER = re.compile(r"[+-][0-9][0-9 ().-]*")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline
_PAGE = 500  # failures read back per query while writing (a page of ids, in file order)


def path_for(run_id: int) -> Path:
    return paths.rejects_dir() / f"run-{run_id}-rejects.csv"


def _visible(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group(0)):02x}"


def safe_cell(value: str) -> str:
    """The text, safe to open in a spreadsheet and to print in a terminal."""
    value = _CONTROL.sub(_visible, value)
    stripped = value.lstrip(" \u00a0")
    if _SIGNED_NUMBER.fullmatch(value):
        return value
    if value.startswith(_FORMULA_START) or stripped.startswith(_FORMULA_START):
        return "'" + value
    return value


#: A cell `safe_cell` and `redact` leave as it is: no control character, no formula or blank
#: first character, nothing key-shaped. Most cells are; one regex instead of five steps.
_PLAIN = re.compile(r"[^=+\-@\t\r\n\0 \u00a0\x01-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*")


def _cell(value: object) -> str:
    text = str(value)
    if "pk_" not in text and _PLAIN.fullmatch(text):
        return text
    return safe_cell(redact(text))


def _header(columns: list[str]) -> list[str]:
    """The file's own columns, then the source columns under their names (which win a clash)."""
    taken = set(columns)
    own = []
    for name in HEADER:
        while name in taken:
            name = "reject_" + name
        taken.add(name)
        own.append(name)
    return [*own, *columns]


@dataclass
class _Plan:
    """What writing the file needs to know of all the failures before the first line: a small
    tuple per failure, not the failures themselves (those are read again a page at a time)."""

    columns: list[str]  # every mapped source column named by a failure, in first-seen order
    order: list[int]  # failure ids by (segment, row), recording order within a row
    refused: set[tuple[str, int]]  # rows Klaviyo refused: their warning lines say so


def _plan(store: HistoryStore, run_id: int) -> _Plan:
    seen: dict[str, None] = {}
    keys: list[tuple[str, int, int]] = []
    refused: set[tuple[str, int]] = set()
    rejected = RowState.REJECTED.value
    for key in store.failure_index(run_id):
        for column in key.columns:
            seen.setdefault(column, None)
        keys.append((key.segment, key.row, key.id))
        if key.state == rejected:
            refused.add((key.segment, key.row))
    keys.sort()
    return _Plan(list(seen), [k[2] for k in keys], refused)


def _final_state(reject: Reject, refused: set[tuple[str, int]]) -> Reject:
    """A warning line takes the row's final state when Klaviyo then refused the row."""
    if reject.state == RowState.IMPORTED_WITH_WARNINGS and (reject.segment, reject.row) in refused:
        return dataclasses.replace(reject, state=RowState.REJECTED)
    return reject


def write(store: HistoryStore, run_id: int, path: Path | None = None) -> Path | None:
    """Write the run's rejects CSV (atomically, 0600); no file when the run has no rejects."""
    plan = _plan(store, run_id)
    target = path or path_for(run_id)
    if not plan.order:
        if path is None:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()  # a symlink is removed itself, its target is left alone
        return None
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with open(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            columns = plan.columns
            writer.writerow([_cell(c) for c in _header(columns)])
            for at in range(0, len(plan.order), _PAGE):
                for found in store.failures_by_id(plan.order[at : at + _PAGE]):
                    reject = _final_state(found, plan.refused)
                    values = dict(reject.source_values)
                    writer.writerow(
                        (
                            _cell(reject.segment),
                            reject.row,
                            reject.state.value,
                            _cell(reject.column),
                            _cell(reject.value),
                            _cell(reject.reason),
                            _cell(reject.email),
                            *(_cell(values.get(c, "")) for c in columns),
                        )
                    )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return target
