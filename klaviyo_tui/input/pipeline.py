"""From an export's segments to validated, serialized chunks, de-duplicated by email.

Two passes, because "last row wins" needs to know the future without holding the data:

1. A cheap pass reads only the email column (plus filter, identifier and custom-property columns;
   two chunks at a time in worker threads, taken in reading order), applies the segment filters,
   hashes each trimmed, lower-cased email to 64 bits and spills (hash, position) pairs to 64
   temporary partition files. Each partition is then sorted on its own to find, for every repeated
   email, the last occurrence. Only the losing rows are kept in memory (16 bytes each), so memory
   stays flat with input size; the spill costs 16 bytes of disk per row. The same pass spills each
   row's phone (in E.164) and external_id the same way to find the values that different customers
   share (input/identifiers.py: those go with none of them), and settles each custom property's
   type over the whole export (mapping.infer_kinds). The emails and phones it normalised are kept
   on disk in reading order (identifiers.KeyTape, ~45 bytes a row) so the full pass does not
   normalise them again.
2. The full pass reads the mapped columns, drops the losing rows as `Reject(state=DUPLICATE,
   reason="duplicate of <segment> row N")` and validates the rest (mapping.validate_chunk, with the
   export's field policy, input/fields.py).

Both passes read each segment through one `SourceWatch`: a file that changes between them (or
during one) raises `SourceChanged` instead of pairing pass 1's de-duplication with other rows.

Edge cases, documented: only rows with a valid email take part (a missing or malformed email is
INVALID, never DUPLICATE). Among those, the winner is the last row by position (segments in export
order, rows in source order) whatever its other fields. With `on_invalid_field = "drop_field"`
(the default) a winner whose phone is unusable is sent without it (imported_with_warnings); with
`"reject_row"` it is reported INVALID and the earlier rows are still DUPLICATE of it, so that
customer is not sent: fix the last row and rerun; the rejects file lists both. The key is the
normalized email (as sent); two different emails share a 64-bit hash with probability ~n²/2⁶⁵
(3·10⁻⁶ at 10M rows).
"""

from __future__ import annotations

import gc
import threading
from collections import deque
from collections.abc import Callable, Iterator
from collections.abc import Mapping as MappingABC
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.input.fastcheck import email_fast
from klaviyo_tui.input.fields import source_values
from klaviyo_tui.input.filters import CompiledFilter, segment_filter
from klaviyo_tui.input.identifiers import IDENTIFIERS, KeyTape, PairSpill, SharedIndex
from klaviyo_tui.input.jsoncols import lower, text
from klaviyo_tui.input.mapping import (
    KINDS,
    ValidatedChunk,
    careful_email,
    identifier_keys,
    infer_kinds,
    pick_kind,
    validate_chunk,
)
from klaviyo_tui.input.sources import SourceError, SourceWatch, read_chunks
from klaviyo_tui.store.config import Export, Mapping, Segment

#: Rows per chunk. Each chunk in flight (read, validated, serialized) costs ~2 KB a row at its
#: peak: measured at 1M rows, 50k-row chunks peak RSS 384-401 MB, 25k 340-342 MB, same CPU.
CHUNK_ROWS = 25_000
_ROW_BITS = 40


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """Running totals, yielded after every chunk (cumulative across segments)."""

    segment: str
    read: int  # rows read after filters
    valid: int
    invalid: int
    duplicates: int
    total: int | None = None  # rows the full pass will read (known after the first pass)
    done: bool = False
    warned: int = 0  # valid rows that go without a field (input/fields.py)


def email_keys(series: pd.Series) -> pa.Array:
    """The de-duplication key: the normalized email, null when missing or invalid."""
    raw = text(series)
    keys = lower(raw)
    fast = email_fast(keys)
    slow = np.flatnonzero(raw.is_valid().to_numpy(zero_copy_only=False) & ~fast)
    keys = pc.if_else(pa.array(fast), keys, pa.scalar(None, pa.string()))
    if len(slow):
        normalized = [careful_email(v)[0] for v in raw.take(pa.array(slow)).to_pylist()]
        mask = np.zeros(len(keys), dtype=bool)
        mask[slow] = True
        keys = pc.replace_with_mask(keys, pa.array(mask), pa.array(normalized, pa.string()))
    return keys


class DedupeIndex:
    """Finds, for every repeated key, the last position; memory = 16 bytes per losing row."""

    def __init__(self) -> None:
        self._spill = PairSpill("klaviyo-tui-dedupe-")
        self.losers = np.zeros(0, np.uint64)
        self.winners = np.zeros(0, np.uint64)

    def add(self, positions: np.ndarray, keys: pa.Array) -> None:
        self._spill.add(positions, keys)

    def close(self) -> None:
        self._spill.close()

    def finish(self) -> None:
        losers, winners = [], []
        for pairs in self._spill.partitions():
            if len(pairs) < 2:
                continue
            h, p = pairs["h"], pairs["p"]
            last = np.ones(len(h), dtype=bool)
            last[:-1] = h[1:] != h[:-1]
            group_end = np.flatnonzero(last)
            owner = group_end[np.searchsorted(group_end, np.arange(len(h)))]
            losers.append(p[~last])
            winners.append(p[owner[~last]])
        if losers:
            loser_pos = np.concatenate(losers)
            order = np.argsort(loser_pos)
            self.losers, self.winners = loser_pos[order], np.concatenate(winners)[order]

    def lookup(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(is a losing row, its winner's position) for each position."""
        if len(self.losers) == 0:
            return np.zeros(len(positions), dtype=bool), np.zeros(len(positions), np.uint64)
        idx = np.minimum(np.searchsorted(self.losers, positions), len(self.losers) - 1)
        hit = self.losers[idx] == positions
        return hit, self.winners[idx]


_freezes = 0
_freeze_lock = threading.Lock()


@contextmanager
def _imports_frozen() -> Iterator[None]:
    """Keep the objects alive when a pass starts (pandas, pyarrow, phonenumbers... ~200k, almost
    all from imports) out of the cyclic GC's sight while the pipeline runs, so the full
    collections that its own short-lived objects (rejects, warnings) trigger scan only those:
    measured at 1M rows, GC time 0.5 s -> under 0.1 s. Unfrozen at the end (the last of
    concurrent runs), so whatever becomes garbage later is still collected."""
    global _freezes
    with _freeze_lock:
        _freezes += 1
        if _freezes == 1:
            gc.freeze()
    try:
        yield
    finally:
        with _freeze_lock:
            _freezes -= 1
            if _freezes == 0:
                gc.unfreeze()


def _release() -> None:
    """Hand Arrow's freed pages back to the OS after each chunk. mimalloc otherwise keeps them, and
    they add up across the reader's threads: measured at 1M rows, peak RSS 425 -> 358 MB."""
    pa.default_memory_pool().release_unused()


def _positions(segment_index: int, rows: pd.Index) -> np.ndarray:
    return (np.uint64(segment_index) << np.uint64(_ROW_BITS)) | np.asarray(rows, dtype=np.uint64)


def _columns(compiled: CompiledFilter, wanted: list[str]) -> list[str]:
    return list(dict.fromkeys([*wanted, *compiled.columns]))


def _segments_of(export: Export, segments: MappingABC[str, Segment]) -> list[Segment]:
    missing = [name for name in export.segments if name not in segments]
    if missing:
        raise SourceError(
            f"Export {export.name!r} uses segment(s) {', '.join(map(repr, missing))} "
            "that are not configured."
        )
    return [segments[name] for name in dict.fromkeys(export.segments)]


@dataclass
class FirstPass:
    """What the first pass learned about the whole export."""

    index: DedupeIndex  # email de-duplication: the losing rows and their winners
    shared: SharedIndex  # identifiers held by different customers (input/identifiers.py)
    kinds: dict[str, str]  # property column -> JSON kind
    total: int  # rows the full pass will read
    keys: KeyTape | None = None  # the normalised emails (and phones in E.164), for the full pass


@dataclass
class _ChunkKeys:
    """What the first pass works out for one chunk (in a worker thread)."""

    positions: np.ndarray
    emails: pa.Array  # the de-duplication keys
    identifiers: list[tuple[str, pa.Array]]  # (field, normalised values)
    kinds: dict[str, set[str]]  # property column -> kinds still possible


def _chunk_keys(
    df: pd.DataFrame,
    positions: np.ndarray,
    export: Export,
    ids: dict[str, str],
    kinds: dict[str, set[str]],
) -> _ChunkKeys:
    keys = email_keys(df[export.mapping.email])
    values = [(f, identifier_keys(f, df[c], export.default_region)) for f, c in ids.items()]
    found = {}
    for column, possible in kinds.items():
        if possible != {"string"} and pd.api.types.is_string_dtype(df[column].dtype):
            found[column] = infer_kinds(text(df[column]), possible)
    return _ChunkKeys(positions, keys, values, found)


#: Chunks the first pass works on at once, each in its own thread: most of the work is in
#: pyarrow's kernels (the GIL released), and nothing else runs before the first pass ends.
FIRST_PASS_THREADS = 2


def first_pass(
    export: Export,
    segs: list[Segment],
    chunk_rows: int = CHUNK_ROWS,
    watches: dict[str, SourceWatch] | None = None,
    on_keys: Callable[[pa.Array], None] | None = None,
) -> FirstPass:
    """Build the de-duplication and shared-identifier indexes and the property kinds.

    `watches` (by segment name) records what was read, for the full pass to compare against.
    `on_keys` hears every chunk's normalised emails (run/sync: a mirror's segment keys).
    Chunks are worked on FIRST_PASS_THREADS at a time and taken in reading order.
    """
    mapping: Mapping = export.mapping
    index = DedupeIndex()
    ids = {f: c for f, c in mapping.fields().items() if f in IDENTIFIERS}
    shared = SharedIndex(list(ids))
    kinds: dict[str, set[str]] = {c: set(KINDS) for c in mapping.properties}
    tape = KeyTape(("email", "phone_number") if "phone_number" in ids else ("email",))
    total = 0

    def absorb(work: Future[_ChunkKeys]) -> None:
        done = work.result()
        index.add(done.positions, done.emails)
        taped = [done.emails]
        for field, values in done.identifiers:
            if field == "phone_number":
                taped.append(values)
            valid = pc.if_else(done.emails.is_valid(), values, None)
            shared.add(field, done.positions, valid)
        tape.write(done.positions, *taped)
        if on_keys is not None:  # sync hook (run/sync): every key of the segment
            on_keys(done.emails)
        for column, possible in done.kinds.items():
            kinds[column] &= possible
        _release()

    try:
        with ThreadPoolExecutor(FIRST_PASS_THREADS, thread_name_prefix="klaviyo-tui-pass1") as pool:
            pending: deque[Future[_ChunkKeys]] = deque()
            for si, seg in enumerate(segs):
                wanted = [mapping.email, *ids.values(), *mapping.properties]
                compiled = segment_filter(seg)  # parsed once per segment, applied per chunk
                watch = watches.setdefault(seg.name, SourceWatch()) if watches is not None else None
                for df in read_chunks(seg, _columns(compiled, wanted), chunk_rows, watch=watch):
                    df = compiled.apply(df)
                    total += len(df)
                    positions = _positions(si, df.index)
                    snapshot = {c: set(k) for c, k in kinds.items()}
                    pending.append(pool.submit(_chunk_keys, df, positions, export, ids, snapshot))
                    if len(pending) >= FIRST_PASS_THREADS:
                        absorb(pending.popleft())
            while pending:
                absorb(pending.popleft())
        index.finish()
        shared.finish(index.losers)
    except BaseException:
        # An error mid-pass: the spills' open files go now, not when its traceback is collected.
        index.close()
        shared.close()
        tape.close()
        raise
    return FirstPass(index, shared, {c: pick_kind(k) for c, k in kinds.items()}, total, tape)


def iter_validated(
    export: Export,
    segments: MappingABC[str, Segment],
    *,
    chunk_rows: int = CHUNK_ROWS,
    on_keys: Callable[[pa.Array], None] | None = None,
) -> Iterator[ValidatedChunk | PipelineStats]:
    """Validated chunks in input order, each followed by running stats; a final stats has done=True.

    Raises SourceError / FilterError (clear messages) for unreadable sources or bad filters, and
    SourceChanged when a file changes between (or during) the passes.
    """
    segs = _segments_of(export, segments)
    # Settled before pass 1, so that pass 2 opens each file (and compares it) before anything else.
    wanted = {seg.name: _columns(segment_filter(seg), export.mapping.columns()) for seg in segs}
    watches: dict[str, SourceWatch] = {}
    with _imports_frozen():
        first = first_pass(export, segs, chunk_rows, watches, on_keys)  # sync hook: on_keys
        try:
            yield from _full_pass(export, segs, first, chunk_rows, wanted, watches)
        finally:
            if first.keys is not None:
                first.keys.close()


def _full_pass(
    export: Export,
    segs: list[Segment],
    first: FirstPass,
    chunk_rows: int,
    wanted: dict[str, list[str]],
    watches: dict[str, SourceWatch],
) -> Iterator[ValidatedChunk | PipelineStats]:
    mapping = export.mapping
    read = valid = invalid = duplicates = warned = 0
    name = segs[0].name if segs else ""
    for si, seg in enumerate(segs):
        name = seg.name
        compiled = segment_filter(seg)
        for df in read_chunks(seg, wanted[seg.name], chunk_rows, watch=watches[seg.name]):
            df = compiled.apply(df)
            positions = _positions(si, df.index)
            lost, winner = first.index.lookup(positions)
            dup_rejects = _duplicates(df[lost], winner[lost], segs, mapping, seg.name)
            shared = first.shared.lookup(positions[~lost])
            known = first.keys.take_all(positions) if first.keys is not None else None
            kept = pa.array(~lost)
            phones = known.get("phone_number") if known is not None else None
            emails = known["email"] if known is not None else None
            chunk = validate_chunk(
                df[~lost],
                mapping,
                default_region=export.default_region,
                segment=seg.name,
                kinds=first.kinds,
                on_invalid_field=export.on_invalid_field,
                shared=shared,
                phones=None if phones is None else phones.filter(kept),
                emails=None if emails is None else emails.filter(kept),
            )
            if dup_rejects:
                chunk.rejects = sorted([*chunk.rejects, *dup_rejects], key=lambda r: r.row)
            chunk.read = len(df)
            read += len(df)
            valid += chunk.valid
            warned += int(chunk.warned_array.sum())
            duplicates += len(dup_rejects)
            invalid += len(chunk.rejects) - len(dup_rejects)
            _release()
            yield chunk
            yield PipelineStats(
                seg.name, read, valid, invalid, duplicates, first.total, warned=warned
            )
    yield PipelineStats(name, read, valid, invalid, duplicates, first.total, True, warned)


def _duplicates(
    df: pd.DataFrame, winners: np.ndarray, segs: list[Segment], mapping: Mapping, segment: str
) -> list[Reject]:
    if len(df) == 0:
        return []
    row_mask = (1 << _ROW_BITS) - 1
    column = mapping.email
    values = source_values(df, list(range(len(df))), mapping.columns())
    keys = email_keys(df[column]).to_pylist()
    out = []
    for pos, (row, value, win) in enumerate(
        zip(df.index.tolist(), df[column].tolist(), winners.tolist(), strict=True)
    ):
        out.append(
            Reject(
                row=int(row),
                segment=segment,
                column=column,
                value="" if value is None or value != value else str(value),
                reason=f"duplicate of {segs[win >> _ROW_BITS].name} row {win & row_mask}",
                state=RowState.DUPLICATE,
                email=keys[pos] or "",
                source_values=values[pos],
            )
        )
    return out
