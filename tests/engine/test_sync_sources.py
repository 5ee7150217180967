"""Incremental runs that skip unchanged rows before validation (run/sync, source hashes), end
to end against the sandbox: what is skipped that way, what never is, and that counts add up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from klaviyo_tui.events import RowState
from klaviyo_tui.run.sync.options import SyncOptions
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.history import HistoryStore
from tests.engine.test_sync import export_config, rows_of, run
from tests.support import sandbox as sandbox_helpers
from tests.support.engine import create_list


@pytest.fixture
def store() -> Iterator[HistoryStore]:
    s = HistoryStore()
    yield s
    s.close()


def first_name(base_url: str, email: str) -> object:
    return sandbox_helpers.profile_attribute(base_url, email, "first_name")


async def test_unchanged_rows_skip_validation_and_bad_rows_are_still_reported(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    rows = rows_of(200)
    rows += [{"email": f"broken{i}", "first_name": "X"} for i in range(3)]  # invalid each run
    rows.append(dict(rows[5]))  # row 6 is a duplicate of the last row, each run
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, incremental=True)
    first, _ = await run(config, store)
    assert first.counts[RowState.IMPORTED.value] == 200
    assert first.sync["unchanged_by_source"] == 0
    rows[10]["first_name"] = "Changed10"
    rows[20]["first_name"] = "Changed20"
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, incremental=True)
    second, _ = await run(config, store)
    counts = second.counts
    assert counts[RowState.IMPORTED.value] == 2 and second.sync["updated"] == 2
    assert counts[RowState.UNCHANGED.value] == 198
    assert second.sync["unchanged_by_source"] == 198  # never validated nor serialized
    assert counts[RowState.INVALID.value] == 3 and counts[RowState.DUPLICATE.value] == 1
    assert second.total_rows == 204
    failures = store.failures(second.run_id or 0)
    assert sorted((f.state, f.row) for f in failures) == [
        (RowState.DUPLICATE, 6),
        (RowState.INVALID, 201),
        (RowState.INVALID, 202),
        (RowState.INVALID, 203),
    ]
    assert first_name(sandbox.base_url, "c10@example.com") == "Changed10"
    third, _ = await run(config, store)
    assert third.jobs == 0 and third.sync["unchanged_by_source"] == 200
    assert third.counts[RowState.INVALID.value] == 3
    forced, _ = await run(config, store, sync=SyncOptions(full=True))
    assert forced.counts[RowState.IMPORTED.value] == 200
    assert forced.sync["unchanged_by_source"] == 0


async def test_a_row_changed_and_changed_back_is_sent_each_time(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    rows = rows_of(20)
    sent = []
    for name in ("First3", "Other", "First3", "First3"):
        rows[3]["first_name"] = name
        config = export_config(tmp_path, sandbox.base_url, rows, list_id, incremental=True)
        summary, _ = await run(config, store)
        sent.append(summary.counts[RowState.IMPORTED.value])
        assert first_name(sandbox.base_url, "c3@example.com") == name
    assert sent == [20, 1, 1, 0]
    assert summary.sync["unchanged_by_source"] == 20


async def test_a_property_type_change_resends_rows_whose_values_did_not_change(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """One value makes the whole column text: every payload changes, not one source value."""
    list_id = create_list(sandbox.base_url)
    rows = [{**row, "orders": str(i)} for i, row in enumerate(rows_of(30))]
    mapping = {"email": "email", "first_name": "first_name", "properties": ["orders"]}
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, mapping, incremental=True)
    await run(config, store)
    rows[0]["orders"] = "many"
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, mapping, incremental=True)
    summary, _ = await run(config, store)
    assert summary.counts[RowState.IMPORTED.value] == 30
    assert summary.sync["unchanged_by_source"] == 0


async def test_a_shared_phone_is_never_skipped_by_source(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """A's row never changes, but B taking A's phone takes it off A's profile, and B giving it
    back puts it on again: both times A's payload changes and A is sent."""
    list_id = create_list(sandbox.base_url)
    rows = [
        {"email": "a@example.com", "phone": "+14155550101"},
        {"email": "b@example.com", "phone": "+14155550102"},
        {"email": "c@example.com", "phone": "+14155550103"},
    ]
    mapping = {"email": "email", "phone_number": "phone"}
    sent = []
    for b_phone in ("+14155550102", "+14155550101", "+14155550102", "+14155550102"):
        rows[1]["phone"] = b_phone
        config = export_config(tmp_path, sandbox.base_url, rows, list_id, mapping, incremental=True)
        summary, _ = await run(config, store)
        sent.append(
            summary.counts[RowState.IMPORTED.value]
            + summary.counts[RowState.IMPORTED_WITH_WARNINGS.value]
        )
    assert sent == [3, 2, 2, 0]
    assert summary.sync["unchanged_by_source"] == 3


async def test_a_state_from_before_source_hashes_goes_by_payload_then_by_source(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    list_id = create_list(sandbox.base_url)
    rows = rows_of(40)
    config = export_config(tmp_path, sandbox.base_url, rows, list_id, incremental=True)
    await run(config, store)
    second, _ = await run(config, store)  # settles the first run into the state
    assert second.sync["unchanged_by_source"] == 40
    with store._tx() as db:  # the first stored format: 8 bytes an entry, no source hashes
        for chunk, hashes in db.execute("SELECT chunk, hashes FROM sync_state").fetchall():
            payload = np.frombuffer(hashes, np.uint64).reshape(-1, 2)[:, 0].copy()
            db.execute(
                "UPDATE sync_state SET hashes = ? WHERE chunk = ?", (payload.tobytes(), chunk)
            )
    third, _ = await run(config, store)
    assert third.counts[RowState.UNCHANGED.value] == 40 and third.jobs == 0
    assert third.sync["unchanged_by_source"] == 0  # by their payload hash
    fourth, _ = await run(config, store)  # the third brought the source hashes up to date
    assert fourth.sync["unchanged_by_source"] == 40 and fourth.jobs == 0
