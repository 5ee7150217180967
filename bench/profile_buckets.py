"""Bucket a py-spy raw profile of the exporter (`export_bench.py --profile x.raw`) by stage.

    python bench/profile_buckets.py before.raw after.raw

Each folded stack goes to the first stage one of whose needles it contains (the RULES order: the
most specific first); sampled seconds = samples / 100 (py-spy at 100 Hz). The stages are those
of PROFILE.md's CPU table, so a new profile can be set beside the old one.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("imports", ("_find_and_load",)),
    ("rejects file", ("run/rejects.py",)),
    (
        "history writes (failures + warnings rows, journal, sync state)",
        ("add_failures", "history_journal.py", "HistoryStore._tx", "export_state.py"),
    ),
    ("pass 1: phone to E.164", ("phones_e164", "careful_phone")),
    ("pass 1: phone memo (hashes, lookups, save)", ("run/sync/phonememo.py", "_phone_keys")),
    ("pass 1: email normalisation", ("email_fast", "careful_email", "email_keys")),
    ("pass 1: property kinds", ("infer_kinds",)),
    ("sync: keyed hashes + state classify", ("run/sync/hashing.py", "SyncRun.filter")),
    ("sync: other", ("run/sync/",)),
    ("confirmation", ("run/confirm.py",)),
    ("batching (pack, fingerprint)", ("input/batching.py", "input/bodies.py")),
    ("HTTP: upload, poll, response parsing", ("klaviyo_tui/klaviyo/", "httpx", "httpcore")),
    ("CSV reader's own threads: file read + SHA-256", ("sources/files.py", "sources/watch.py")),
    ("pass 2: CSV read", ("full_pass>read_chunks",)),
    ("pass 1: CSV read", ("first_pass>read_chunks",)),
    ("pass 1: dedupe + shared-id spill, key tape, other", ("first_pass", "_chunk_keys")),
    ("pass 2: JSON assembly (jsoncols)", ("input/jsoncols.py",)),
    ("pass 2: field policy / source_values", ("input/fields.py",)),
    ("pass 2: validation other", ("validate_chunk",)),
    ("pass 2: index lookups, tape, filters, duplicates", ("full_pass", "iter_validated")),
    ("reader thread other (Step building, queue hand-off)", ("run/reading.py",)),
    ("event loop other (progress, scheduling)", ("asyncio",)),
)


def _has(stack: str, needle: str) -> bool:
    """`needle` in the stack; "a>b": frame text a, then b deeper in the same stack."""
    at = 0
    for part in needle.split(">"):
        at = stack.find(part, at)
        if at < 0:
            return False
    return True


def stage(stack: str) -> str:
    for name, needles in RULES:
        if any(_has(stack, needle) for needle in needles):
            return name
    return "other"


def buckets(path: Path) -> Counter[str]:
    totals: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        totals[stage(stack)] += int(samples)
    return totals


def main() -> None:
    profiles = [buckets(Path(p)) for p in sys.argv[1:]]
    for name in [*(r[0] for r in RULES), "other", "total sampled"]:
        cells = []
        for totals in profiles:
            whole = sum(totals.values())
            n = whole if name == "total sampled" else totals[name]
            cells.append(f"{n / 100:.2f} | {100 * n / whole:.1f}%")
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
