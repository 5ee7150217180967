"""The phone memo (run/sync/phonememo.py): an incremental run's first pass normalises only the
phones it has not seen, and finds shared numbers exactly as if it had normalised them all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klaviyo_tui.events import RowState
from klaviyo_tui.input import fullpass, pipeline
from klaviyo_tui.input.mapping import READ_TWO_WAYS, ValidatedChunk, phones_e164
from klaviyo_tui.input.pipeline import iter_validated
from klaviyo_tui.run.sync.phonememo import PhoneMemo
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.store.history import HistoryStore
from tests.engine.test_sync import export_config, run
from tests.support import sandbox as sandbox_helpers
from tests.support.engine import create_list, write_customers

MAPPING = {"email": "email", "first_name": "first_name", "phone_number": "phone"}


@pytest.fixture
def store() -> Iterator[HistoryStore]:
    s = HistoryStore()
    yield s
    s.close()


@pytest.fixture
def normalised(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The phone values each pass normalised, as they were read."""
    seen: dict[str, list[str]] = {"first": [], "full": []}

    def first_pass(raw: pa.Array, region: str) -> tuple[pa.Array, dict[int, str]]:
        seen["first"] += raw.to_pylist()
        return phones_e164(raw, region)

    def full_pass(raw: pa.Array, region: str) -> tuple[pa.Array, dict[int, str]]:
        seen["full"] += raw.to_pylist()
        return phones_e164(raw, region)

    monkeypatch.setattr(pipeline, "phones_e164", first_pass)
    monkeypatch.setattr(fullpass, "phones_e164", full_pass)
    return seen


def customers(n: int) -> list[dict[str, str]]:
    return [
        {"email": f"p{i}@example.com", "first_name": f"P{i}", "phone": f"+1415555{i:04d}"}
        for i in range(n)
    ]


def phone_of(base_url: str, email: str) -> object:
    return sandbox_helpers.profile_attribute(base_url, email, "phone_number")


async def test_an_incremental_run_normalises_only_the_phones_it_has_not_seen(
    tmp_path: Path,
    sandbox: SandboxServer,
    store: HistoryStore,
    normalised: dict[str, list[str]],
) -> None:
    list_id = create_list(sandbox.base_url)
    rows = customers(50)
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, MAPPING, incremental=True)
    await run(config, store)
    assert len(normalised["first"]) == 50  # the full run normalises (and remembers) them all
    normalised["first"].clear()
    rows[3]["first_name"] = "Renamed"  # its phone was seen: normalised by the full pass only
    rows[7]["phone"] = "(415) 555-9999"  # a new value: normalised by the first pass
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, MAPPING, incremental=True)
    summary, _ = await run(config, store)
    assert normalised["first"] == ["(415) 555-9999"]
    assert normalised["full"] == ["+14155550003"]
    assert summary.counts[RowState.IMPORTED.value] == 2
    assert summary.sync["unchanged_by_source"] == 48
    assert phone_of(sandbox.base_url, "p3@example.com") == "+14155550003"
    assert phone_of(sandbox.base_url, "p7@example.com") == "+14155559999"


async def test_a_number_written_another_way_is_found_shared_with_one_the_memo_knows(
    tmp_path: Path,
    sandbox: SandboxServer,
    store: HistoryStore,
    normalised: dict[str, list[str]],
) -> None:
    """p1 takes p0's number, written in the national form: only p1's value is normalised, p0's
    comes from the memo, and both are still one E.164 number held by two customers."""
    list_id = create_list(sandbox.base_url)
    rows = customers(5)
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, MAPPING, incremental=True)
    await run(config, store)
    normalised["first"].clear()
    rows[1]["phone"] = "415-555-0000"
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, MAPPING, incremental=True)
    summary, _ = await run(config, store)
    assert normalised["first"] == ["415-555-0000"]
    assert summary.counts[RowState.IMPORTED_WITH_WARNINGS.value] == 2
    warned = store.failures(summary.run_id or 0)
    assert sorted(f.row for f in warned if "shared" in f.reason) == [1, 2]


async def test_a_dry_run_leaves_the_memo_alone_and_removing_the_export_forgets_it(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    config = export_config(
        tmp_path, sandbox.base_url, customers(5), list_id, MAPPING, incremental=True
    )
    await run(config, store, dry_run=True)
    assert store.phone_memo("customers") == (b"", b"")
    await run(config, store)
    raw, e164 = store.phone_memo("customers")
    assert len(raw) == len(e164) == 5 * 8
    store.forget_sync("customers")
    assert store.phone_memo("customers") == (b"", b"")


def test_the_memo_keeps_what_a_run_used_and_learned_and_depends_on_the_region(
    store: HistoryStore,
) -> None:
    values = pa.array(["+14155550000", "+14155550001", "0207 946 0000", None])
    first = PhoneMemo.open(store, "e", "US", deferring=True)
    raw = first.raw_hashes(values)
    assert raw[3] == 0 and len(set(raw[:3].tolist())) == 3
    first.learn(
        raw, first.normalised_hashes(pa.array(["+14155550000", "+14155550001", None, None]))
    )
    first.save(store, "e")
    again = PhoneMemo.open(store, "e", "US", deferring=True)
    found, hashes = again.lookup(again.raw_hashes(values[:2]))
    assert found.tolist() == [True, True] and hashes[0] != hashes[1] and hashes.all()
    found, hashes = again.lookup(again.raw_hashes(values[2:]))
    assert found.tolist() == [True, False] and hashes.tolist() == [0, 0]  # unusable: 0
    again.save(store, "e")  # every value found, none learned: nothing to write
    assert len(store.phone_memo("e")[0]) == 3 * 8
    later = PhoneMemo.open(store, "e", "US", deferring=True)
    later.lookup(later.raw_hashes(values[:2]))
    later.save(store, "e")  # two of the three values seen: the third is dropped
    assert len(store.phone_memo("e")[0]) == 2 * 8
    elsewhere = PhoneMemo.open(store, "e", "GB", deferring=True)  # another region: not found
    assert not elsewhere.lookup(elsewhere.raw_hashes(values[:2]))[0].any()


#: Raw forms of a few numbers (the same E.164 number written several ways), unusable ones, and
#: none: a memo may know any of them, and its hits must change no outcome.
PHONES = [
    "+14155550101",
    "(415) 555-0101",
    "415.555.0101",
    "+1 415 555 0102",
    "415-555-0102",
    "+44 20 7946 0000",
    "020 7946 0000",
    "12345",
    "+1 000 000 0000",
    "",
]


def outcomes(
    export: Export, segments: dict[str, Segment], memo: PhoneMemo | None, chunk_rows: int = 7
) -> list[object]:
    """Every chunk's payloads, rejects and warnings, as the full pass hands them on."""
    out: list[object] = []
    for item in iter_validated(export, segments, chunk_rows=chunk_rows, phones=memo):
        if isinstance(item, ValidatedChunk):
            out.append(item.payload_array.to_pylist())
            out += [(r.row, r.state, r.column, r.reason) for r in item.rejects]
            out += [(w.row, w.state, w.column, w.reason) for w in item.warnings]
    return out


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(st.integers(0, 6), st.sampled_from(PHONES)), min_size=1, max_size=40),
    earlier=st.lists(st.sampled_from(PHONES), min_size=1, max_size=len(PHONES)),
)
def test_what_the_memo_knows_changes_no_outcome(
    tmp_path: Path, store: HistoryStore, rows: list[tuple[int, str]], earlier: list[str]
) -> None:
    """Whatever phones an earlier run left in the memo, a run gives the same payloads, the same
    shared-phone warnings and the same rejects as with no memo at all."""
    mapping = Mapping(email="email", phone_number="phone")
    export = Export("e", "c", "L", ("s",), mapping)
    before = tmp_path / "before.csv"
    now = tmp_path / "now.csv"
    write_customers(before, [{"email": f"e{i}@x.com", "phone": p} for i, p in enumerate(earlier)])
    # the same email several times (last row wins), some in capitals: one customer each
    write_customers(
        now,
        [
            {"email": f"C{e}@Example.com" if n % 3 else f"c{e}@example.com", "phone": p}
            for n, (e, p) in enumerate(rows)
        ]
        + [{"email": "", "phone": PHONES[0]}],
    )
    learner = PhoneMemo.open(store, "e", "US", deferring=False)  # an earlier run fills it
    outcomes(export, {"s": Segment("s", str(before))}, learner)
    learner.save(store, "e")
    segments = {"s": Segment("s", str(now))}
    memo = PhoneMemo.open(store, "e", "US", deferring=True)
    assert outcomes(export, segments, memo) == outcomes(export, segments, None)
    known = {p for p in earlier if p} & {p for _, p in rows if p} | {PHONES[0]}
    assert memo._used.any() == bool(known & set(earlier))  # found whenever it could be


def test_a_phone_read_differently_by_the_two_passes_is_sent_as_the_first_pass_judged_it(
    tmp_path: Path, store: HistoryStore
) -> None:
    """JSON Lines are typed per chunk (pandas), and the passes' chunks differ: c's number reads
    "4155550101.0" (unusable) beside text in the first pass's chunk and "4155550101" (valid)
    among numbers in the full pass's. Found in the memo, it must still go out as the first
    pass judged it, the one the shared-phone check saw: e holds +14155550101, and c sending it
    too would put one number on two customers (found by a walkthrough)."""
    lines = [
        {"email": "a@x.com", "phone": "x"},
        {"email": "b@x.com", "phone": None},
        {"email": "c@x.com", "phone": 4155550101.0},
        {"email": "d@x.com", "phone": None},
        {"email": "e@x.com", "phone": "+14155550101"},
        {"email": "f@x.com", "phone": "y"},
    ]
    source = tmp_path / "c.jsonl"
    source.write_text("".join(orjson.dumps(line).decode() + "\n" for line in lines))
    export = Export("e", "c", "L", ("s",), Mapping(email="email", phone_number="phone"))
    segments = {"s": Segment("s", str(source))}
    learner = PhoneMemo.open(store, "e", "US", deferring=False)
    plain = outcomes(export, segments, learner, chunk_rows=2)
    learner.save(store, "e")
    memo = PhoneMemo.open(store, "e", "US", deferring=True)
    assert outcomes(export, segments, memo, chunk_rows=2) == plain
    assert memo._used.any()
    assert not any("+14155550101" in str(p) and "c@x.com" in str(p) for p in plain)
    warned = [w for w in plain if isinstance(w, tuple) and w[0] == 3]
    assert warned == [
        (3, RowState.IMPORTED_WITH_WARNINGS, "phone", f"{READ_TWO_WAYS}; sent without it")
    ]
