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
   normalise them again. An incremental run spares normalising the phones its export has seen
   (`PhoneKeys`, run/sync/phonememo.py): the full pass normalises those of the rows it validates.
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
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from klaviyo_tui.input.chunks import PipelineStats as PipelineStats
from klaviyo_tui.input.chunks import email_keys as email_keys
from klaviyo_tui.input.chunks import positions_of, release
from klaviyo_tui.input.filters import CompiledFilter, segment_filter
from klaviyo_tui.input.fullpass import Unchanged, full_pass
from klaviyo_tui.input.identifiers import (
    DEFERRED,
    IDENTIFIERS,
    KeyTape,
    PairSpill,
    SharedIndex,
    SpillBatch,
    spill_batch,
    spill_hashes,
)
from klaviyo_tui.input.jsoncols import text
from klaviyo_tui.input.mapping import (
    KINDS,
    ValidatedChunk,
    identifier_keys,
    infer_kinds,
    phones_e164,
    pick_kind,
)
from klaviyo_tui.input.scratch import sweep_orphans
from klaviyo_tui.input.sources import SourceError, SourceWatch, read_chunks
from klaviyo_tui.store.config import Export, Mapping, Segment

#: Rows per chunk. Each chunk in flight (read, validated, serialized) costs ~2 KB a row at its
#: peak: measured at 1M rows, 50k-row chunks peak RSS 384-401 MB, 25k 340-342 MB, same CPU.
CHUNK_ROWS = 25_000


class DedupeIndex:
    """Finds, for every repeated key, the last position; memory = 16 bytes per losing row."""

    def __init__(self) -> None:
        self._spill = PairSpill("dedupe")
        self.losers = np.zeros(0, np.uint64)
        self.winners = np.zeros(0, np.uint64)

    def add(self, positions: np.ndarray, keys: pa.Array) -> None:
        self._spill.add(positions, keys)

    def write(self, batch: SpillBatch | None) -> None:
        """Spill one chunk's pairs, worked out by `spill_batch` from its keys."""
        self._spill.write(batch)

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
            lose = np.flatnonzero(~last)  # each loser's group ends at the next last row
            group_end = np.flatnonzero(last)
            losers.append(p[lose])
            winners.append(p[group_end[np.searchsorted(group_end, lose)]])
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


class PhoneKeys(Protocol):
    """Keyed hashes of the phones an export has seen (run/sync/phonememo.py), so that the first
    pass need not normalise them all: a found value's hash goes to the shared-phone spill as
    is and the tape says DEFERRED. Values not found, or all when not `deferring`, are normalised
    and spilled by `normalised_hashes`; `learn` hears the values a chunk normalised."""

    deferring: bool

    def raw_hashes(self, raw: pa.Array) -> np.ndarray: ...
    def normalised_hashes(self, normalised: pa.Array) -> np.ndarray: ...
    def lookup(self, raw_hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def learn(self, raw_hashes: np.ndarray, normalised_hashes: np.ndarray) -> None: ...


def _phone_keys(
    raw: pa.Array, positions: np.ndarray, valid: pa.Array, region: str, memo: PhoneKeys
) -> tuple[pa.Array, SpillBatch | None]:
    """One chunk's phones for the tape, and their spill, with a memo (`PhoneKeys`)."""
    raw_hashes = memo.raw_hashes(raw)
    if memo.deferring:
        found, hashes = memo.lookup(raw_hashes)
    else:
        found, hashes = np.zeros(len(raw), bool), np.zeros(len(raw), np.uint64)
    todo = np.flatnonzero(~found)
    normalised = phones_e164(raw if len(todo) == len(raw) else raw.take(pa.array(todo)), region)[0]
    hashes[todo] = memo.normalised_hashes(normalised)
    memo.learn(raw_hashes[todo], hashes[todo])
    spill = spill_hashes(positions, np.where(valid.to_numpy(zero_copy_only=False), hashes, 0))
    if len(todo) == len(raw):
        return normalised, spill
    # usable values found: DEFERRED and the value as read; unusable ones: null, as normalised
    usable = np.flatnonzero(found & (hashes != 0))
    deferred = pc.binary_join_element_wise(DEFERRED, raw.take(pa.array(usable)), "")
    slot = np.full(len(raw), -1, np.int64)
    slot[todo] = np.arange(len(todo))
    slot[usable] = len(todo) + np.arange(len(usable))
    pool = pa.concat_arrays([normalised.cast(pa.string()), deferred.cast(pa.string())])
    return pool.take(pa.array(slot, mask=slot < 0)), spill


@dataclass
class _ChunkKeys:
    """What the first pass works out for one chunk (in a worker thread): the keys, and their
    hashed pairs ready to spill, so that the reading thread only writes them."""

    positions: np.ndarray
    emails: pa.Array  # the de-duplication keys
    email_pairs: SpillBatch | None
    identifiers: list[tuple[str, pa.Array, SpillBatch | None]]  # (field, normalised, pairs)
    kinds: dict[str, set[str]]  # property column -> kinds still possible


def _chunk_keys(
    df: pd.DataFrame,
    positions: np.ndarray,
    export: Export,
    ids: dict[str, str],
    kinds: dict[str, set[str]],
    phones: PhoneKeys | None,
) -> _ChunkKeys:
    keys = email_keys(df[export.mapping.email])
    valid = keys.is_valid()  # only rows with a valid email count (identifiers.py)
    values = []
    for field, column in ids.items():
        if field == "phone_number" and phones is not None:
            raw = text(df[column])
            normalised, pairs = _phone_keys(raw, positions, valid, export.default_region, phones)
        else:
            normalised = identifier_keys(field, df[column], export.default_region)
            pairs = spill_batch(positions, pc.if_else(valid, normalised, None))
        values.append((field, normalised, pairs))
    found = {}
    for column, possible in kinds.items():
        if possible != {"string"} and pd.api.types.is_string_dtype(df[column].dtype):
            found[column] = infer_kinds(text(df[column]), possible)
    return _ChunkKeys(positions, keys, spill_batch(positions, keys), values, found)


#: Chunks the first pass works on at once, each in its own thread: most of the work is in
#: pyarrow's kernels (the GIL released), and nothing else runs before the first pass ends.
FIRST_PASS_THREADS = 2

#: The first pass reads a few columns, so its chunks are this many times the full pass's: each
#: chunk costs ~5 ms whatever its size (~100 kernel calls, ~20 regex compiles for the phone
#: checks), paid half as often. Measured at 1M rows, 1 vs 2: exporter 9.8-10.3 vs 8.9-9.8 CPU-s,
#: same peak RSS; but an incremental run (1% changed) peaks at 350-353 vs 365-367 MB;
#: 4 cost +8 MB in a full export for no clear CPU gain.
FIRST_PASS_SCALE = 2


def first_pass(
    export: Export,
    segs: list[Segment],
    chunk_rows: int = CHUNK_ROWS,
    watches: dict[str, SourceWatch] | None = None,
    on_keys: Callable[[pa.Array], None] | None = None,
    phones: PhoneKeys | None = None,
) -> FirstPass:
    """Build the de-duplication and shared-identifier indexes and the property kinds.

    `watches` (by segment name) records what was read, for the full pass to compare against.
    `on_keys` hears every chunk's normalised emails (run/sync: a mirror's segment keys);
    `phones` spares normalising the phones an incremental export has seen (`PhoneKeys`).
    Chunks of `chunk_rows * FIRST_PASS_SCALE` rows are worked on FIRST_PASS_THREADS at a time and
    taken in reading order.
    """
    mapping: Mapping = export.mapping
    sweep_orphans()  # what killed runs left in the temp dir (input/scratch.py)
    index = DedupeIndex()
    ids = {f: c for f, c in mapping.fields().items() if f in IDENTIFIERS}
    shared = SharedIndex(list(ids))
    kinds: dict[str, set[str]] = {c: set(KINDS) for c in mapping.properties}
    tape = KeyTape(("email", "phone_number") if "phone_number" in ids else ("email",))
    total = 0

    def absorb(work: Future[_ChunkKeys]) -> None:
        done = work.result()
        index.write(done.email_pairs)
        taped = [done.emails]
        for field, values, pairs in done.identifiers:
            if field == "phone_number":
                taped.append(values)
            shared.write(field, pairs)
        tape.write(done.positions, *taped)
        if on_keys is not None:  # sync hook (run/sync): every key of the segment
            on_keys(done.emails)
        for column, possible in done.kinds.items():
            kinds[column] &= possible
        release()

    try:
        with ThreadPoolExecutor(FIRST_PASS_THREADS, thread_name_prefix="klaviyo-tui-pass1") as pool:
            pending: deque[Future[_ChunkKeys]] = deque()
            for si, seg in enumerate(segs):
                wanted = [mapping.email, *ids.values(), *mapping.properties]
                compiled = segment_filter(seg)  # parsed once per segment, applied per chunk
                watch = watches.setdefault(seg.name, SourceWatch()) if watches is not None else None
                columns = _columns(compiled, wanted)
                rows = chunk_rows * FIRST_PASS_SCALE
                for df in read_chunks(seg, columns, rows, watch=watch):
                    df = compiled.apply(df)
                    total += len(df)
                    positions = positions_of(si, df.index)
                    snapshot = {c: set(k) for c, k in kinds.items()}
                    pending.append(
                        pool.submit(_chunk_keys, df, positions, export, ids, snapshot, phones)
                    )
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
    unchanged: Unchanged | None = None,
    phones: PhoneKeys | None = None,
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
        first = first_pass(export, segs, chunk_rows, watches, on_keys, phones)  # sync hooks
        try:
            yield from full_pass(export, segs, first, chunk_rows, wanted, watches, unchanged)
        finally:
            if first.keys is not None:
                first.keys.close()
