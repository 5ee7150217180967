"""The per-run rejects CSV: every row that was not imported, and every field a row was sent
without, with its source row, the reason, its email and its mapped source values.

Written from the history store (the one source of truth): once the source is read (`draft`), and
again at the end if a failure was recorded since (`finish`). Columns: `segment,
row, state, column, value, reason, klaviyo_email`, then the row's values of every mapped source
column under the source's own column names, so the file itself can be fixed and imported again
as a segment source with the same export mapping (README, "Fixing rejected rows"). A source column
named like one of the file's own columns keeps its name; the file's column is then prefixed
`reject_`. A warning line (a field a sent row went without) carries the row's final state:
`imported_with_warnings`, or `rejected_by_klaviyo` when Klaviyo then refused the row. Rows that
Klaviyo refused get their values from the source read again at the end of the run (sent rows'
values are not kept: run/refused_values.py); only the email when the row has changed since.

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
a predictable temporary name would have been) is replaced, never followed. A path the user chose
is never replaced unless they said so (`overwrite`): anything already there (a file, a link) is
refused with `RejectsFileExists`, and the temporary file is then put in place with `os.link`,
which fails rather than replace a file that appeared meanwhile. The run's own file (no path) is
replaced each time the run writes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import errno
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson

from klaviyo_tui.errors import AppError
from klaviyo_tui.events import RowState
from klaviyo_tui.redaction import redact
from klaviyo_tui.store import paths
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.store.history_failures import FailureRow
from klaviyo_tui.store.history_records import values_of

HEADER = ("segment", "row", "state", "column", "value", "reason", "klaviyo_email")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
_SIGNED_NUMBER = re.compile(r"[+-][0-9][0-9 ().-]*")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline
_PAGE = 500  # failures read back per query while writing (a page of ids, in file order)


class RejectsFileExists(AppError):
    """Something is already at the path the user chose: it is left as it was."""

    title = "The file already exists"
    default_hint = "Choose another path, or say to replace the file."

    def __init__(self, path: Path, *, hint: str | None = None) -> None:
        super().__init__(f"{path} already exists; it was left as it was", hint=hint)
        self.path = path


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


#: Anything in a line's cells (joined by `_SEP`) that `_cell` could change: a control character,
#: something key-shaped, or a cell starting with a formula trigger or a blank that is not a
#: signed number (`_SIGNED_NUMBER`). One search per line; a line with a hit goes through `_cell`
#: cell by cell (tests/unit/test_rejects_cells.py checks both give the same cells).
_SEP = "\x1f"
_CONTROL_ANY = re.compile(r"[\x00-\x1e\x7f-\x9f]")  # every control character but _SEP
_RISKY_START = re.compile(r"\x1f(?![+-][0-9][0-9 ().-]*(?:\x1f|\Z))[=+\-@ \u00a0]")


def _cells(cells: list[object]) -> list[object]:
    """`_cell` of each cell; the cells as they are when none needs it (most lines)."""
    try:
        joined = _SEP.join(cells)  # type: ignore[arg-type]  # not text: TypeError, below
    except TypeError:  # not text (a hand-edited history file): one by one, null as empty
        return [_cell("" if c is None else c) for c in cells]
    if (
        "pk_" not in joined
        and _CONTROL_ANY.search(joined) is None
        and _RISKY_START.search(_SEP + joined) is None
        and joined.count(_SEP) == len(cells) - 1
    ):
        return cells
    return [_cell(c) for c in cells]


def _values(text: str | None) -> dict[str, object]:
    """A failure's source values by column (orjson; the json module's reading when it refuses)."""
    if not text:
        return {}
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return dict(values_of(text))
    return data if isinstance(data, dict) else {}  # values are text, or see `_cells`


def _columns(texts: list[str]) -> list[str]:
    """Every source column named by a failure, in first-seen order."""
    seen: dict[str, None] = {}
    last: object = None
    for text in texts:
        keys = _values(text).keys()
        if keys != last:  # most failures share the same columns: skip the merge then
            for column in keys:
                seen.setdefault(str(column), None)
            last = keys
    return list(seen)


def _lines(
    rows: list[FailureRow], columns: list[str], refused: set[tuple[str, int]]
) -> list[list[object]]:
    """The file's lines for a page of failures. A warning line takes the row's final state when
    Klaviyo then refused the row."""
    warned, rejected = RowState.IMPORTED_WITH_WARNINGS.value, RowState.REJECTED.value
    lines: list[list[object]] = []
    for f in rows:
        state = RowState(f.state).value
        if state == warned and (f.segment, f.row) in refused:
            state = rejected
        values = _values(f.source_values)
        get = values.get
        cells = _cells(
            [f.segment, f.column, f.value, f.reason, f.email, *[get(c, "") for c in columns]]
        )
        lines.append([cells[0], f.row, state, *cells[1:]])
    return lines


def _check_free(target: Path) -> None:
    """Raise unless `target` is free to take (nothing there, not even a dangling link)."""
    if target.is_dir() and not target.is_symlink():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    if os.path.lexists(target):
        raise RejectsFileExists(target)


def _put(tmp_name: str, target: Path, *, overwrite: bool) -> None:
    """Give the written temporary file its name: replacing what is there only if `overwrite`."""
    if overwrite:
        os.replace(tmp_name, target)
        return
    try:
        os.link(tmp_name, target)  # atomic, and fails rather than replace anything
    except FileExistsError:
        raise RejectsFileExists(target) from None
    except OSError:  # a file system without hard links (FAT, some network shares)
        _check_free(target)
        os.replace(tmp_name, target)
        return
    with contextlib.suppress(OSError):  # the file is in place; a stray temporary name is no error
        os.unlink(tmp_name)


def write(
    store: HistoryStore, run_id: int, path: Path | None = None, *, overwrite: bool = False
) -> Path | None:
    """Write the run's rejects CSV (atomically, 0600); no file when the run has no rejects.

    A `path` where something already is raises `RejectsFileExists` (nothing is written or
    changed) unless `overwrite`; the run's own file (no `path`) is always replaced.

    A page of failures at a time, one `writerows` per page: what is held is the page and a small
    plan (ids, refused rows, column names), not every failure."""
    overwrite = overwrite or path is None
    target = path or path_for(run_id)
    plan = store.failure_plan(run_id)
    if not plan.order:
        if path is None:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()  # a symlink is removed itself, its target is left alone
        return None
    if not overwrite:
        _check_free(target)  # before the work; `_put` checks again, atomically
    columns = _columns(plan.source_values)
    del plan.source_values[:]
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with open(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([_cell(c) for c in _header(columns)])
            for at in range(0, len(plan.order), _PAGE):
                rows = store.failure_rows(plan.order[at : at + _PAGE])
                writer.writerows(_lines(rows, columns, plan.refused))
            handle.flush()
            os.fsync(handle.fileno())
        _put(tmp_name, target, overwrite=overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return target


def draft(store: HistoryStore, run_id: int) -> int:
    """Write the run's file once its source is read, while the last jobs are confirmed (a 1M-row
    run's 38k rejects took 0.7 s after its last confirmation): by then most runs have all their
    rejects (invalid rows, duplicates, dropped fields). Returns the store's count of failure
    writes, read before the file: `finish` writes the file again only if it moved."""
    changes = store.failure_changes
    write(store, run_id)
    return changes


def finish(
    store: HistoryStore,
    run_id: int,
    drafted_at: int | None,
    fill: Callable[[], object] | None = None,
) -> Path | None:
    """The run's file as the run ends: the draft (`draft`) stands if no failure was written,
    changed or removed since it began (Klaviyo refused nothing, nothing was found missing);
    otherwise it is written again. `fill` first records what the history lacks (the values of
    rows Klaviyo refused: run/refused_values.py)."""
    if fill is not None:
        fill()
    if drafted_at is not None and drafted_at == store.failure_changes:
        target = path_for(run_id)
        return target if target.exists() else None
    return write(store, run_id)


async def finish_after_draft(
    store: HistoryStore,
    run_id: int,
    early: asyncio.Future[int] | None,
    fill: Callable[[], object] | None = None,
) -> None:
    """`finish`, once the early file's thread (if any) has placed its file: that thread is never
    cancelled, so its file can't land after the final one. A draft that failed (a failure
    removed while it was read) counts as none."""
    drafted_at = None
    if early is not None:
        with contextlib.suppress(Exception):
            drafted_at = await asyncio.shield(early)
    await asyncio.to_thread(finish, store, run_id, drafted_at, fill)
